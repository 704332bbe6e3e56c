package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/watch"
)

// watchCmd records the changes of a Kubernetes cluster as change events:
// tidemark watch.
type watchCmd struct {
	cmd *kingpin.CmdClause

	kubeconfig, kubeContext string
	namespaces              []string
	selector                string
	kinds                   []string
	attrs                   map[string]string
	catchUp                 time.Duration

	url, org, token string
	retries         int

	listenAddress string
	log           logFlags
}

func newWatchCmd(app *kingpin.Application) *watchCmd {
	c := &watchCmd{attrs: map[string]string{}}
	c.cmd = app.Command("watch", "Record the changes of a Kubernetes cluster as change events: rollouts, Argo Rollouts steps, HPA scales, ConfigMap and Secret changes (docs/kubernetes.md).")
	f := c.cmd.Flag
	f("kubeconfig", "Kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account.").StringVar(&c.kubeconfig)
	f("context", "Kubeconfig context; default: the current one.").StringVar(&c.kubeContext)
	f("namespace", "Namespace to watch (repeatable, or a comma-separated list); default: all.").Short('n').StringsVar(&c.namespaces)
	f("selector", "Label selector the objects must match, e.g. 'team=payments,tier!=batch'.").Short('l').StringVar(&c.selector)
	f("kinds", "Kinds to watch, comma-separated: "+strings.Join(kindNames(), ", ")+"; default: all (rollouts when Argo Rollouts is installed).").StringsVar(&c.kinds)
	f("attr", "Label k=v added to every event, e.g. cluster=prod-eu (repeatable).").Short('a').StringMapVar(&c.attrs)
	durationFlag(f("catch-up-window", "On start, write the stop of a rollout that finished this recently, in case a watcher before a restart wrote its start. 0: never.").Default("15m"), &c.catchUp)
	f("url", "Server URL.").Envar("TIDEMARK_URL").Default("http://localhost:9470").StringVar(&c.url)
	f("org", "Organization.").Envar("TIDEMARK_ORG").Default("default").StringVar(&c.org)
	f("token", "Token with write scope.").Envar("TIDEMARK_TOKEN").StringVar(&c.token)
	f("retries", "Retries of one write on 429, 5xx and network errors, with backoff; then the watcher waits and tries again.").Default("5").IntVar(&c.retries)
	f("web.listen-address", "Address for /metrics, /-/healthy and /-/ready; empty: none.").Default("").StringVar(&c.listenAddress)
	c.log.register(c.cmd)
	return c
}

func kindNames() []string {
	var out []string
	for _, k := range watch.AllKinds {
		out = append(out, string(k))
	}
	return out
}

func (c *watchCmd) handles(cmd string) bool { return cmd == c.cmd.FullCommand() }

// splitList splits repeatable, comma-separated flag values.
func splitList(items []string) []string {
	var out []string
	for _, it := range items {
		for _, s := range strings.Split(it, ",") {
			if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

func (c *watchCmd) run() int {
	logger := c.log.logger()
	kinds, err := watch.ParseKinds(c.kinds)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: --kinds: %v\n", err)
		return exitRejected
	}
	if c.token == "" {
		fmt.Fprintln(os.Stderr, "tidemark: no token: set --token or TIDEMARK_TOKEN (a token with write scope)")
		return exitRejected
	}
	cl, err := client.New(client.Options{URL: c.url, Org: c.org, Token: c.token, Retries: c.retries})
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: %v\n", err)
		return exitRejected
	}
	// client-go logs through klog: send it to the same log.
	klog.SetSlogLogger(logger.With("component", "client-go"))

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = c.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.kubeContext}).ClientConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: Kubernetes client config: %v\n", err)
		return exitRejected
	}
	cfg = rest.AddUserAgent(cfg, "tidemark-watch/"+version)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: Kubernetes client: %v\n", err)
		return exitRejected
	}

	// Argo Rollouts are watched where its API is served.
	var dyn dynamic.Interface
	wantRollouts := len(kinds) == 0 || slices.Contains(kinds, watch.Rollouts)
	if wantRollouts {
		gv := watch.RolloutsResource.GroupVersion().String()
		served := false
		res, err := kube.Discovery().ServerResourcesForGroupVersion(gv)
		if err == nil {
			served = slices.ContainsFunc(res.APIResources, func(r metav1.APIResource) bool { return r.Name == watch.RolloutsResource.Resource })
		}
		switch {
		case served:
			if dyn, err = dynamic.NewForConfig(cfg); err != nil {
				fmt.Fprintf(os.Stderr, "tidemark: Kubernetes dynamic client: %v\n", err)
				return exitRejected
			}
		case len(kinds) > 0:
			fmt.Fprintf(os.Stderr, "tidemark: --kinds rollouts: the cluster does not serve %s rollouts (is Argo Rollouts installed?)\n", gv)
			return exitRejected
		default:
			logger.Info("Argo Rollouts not served; not watching rollouts", "group_version", gv, "err", err)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	w, err := watch.New(logger, reg, watch.Options{
		Kube: kube, Dynamic: dyn,
		Namespaces: splitList(c.namespaces), Selector: c.selector, Kinds: kinds,
		Attributes: c.attrs, Sink: watch.ClientSink(cl), CatchUpWindow: c.catchUp,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: %v\n", err)
		return exitRejected
	}

	ctx, stop := signalContext(logger)
	defer stop()
	var g run.Group
	{
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error {
			if err := w.Run(ctx); err != nil {
				return fmt.Errorf("watch: %w", err)
			}
			return nil
		}, func(error) { cancel() })
	}
	if c.listenAddress != "" {
		ln, err := net.Listen("tcp", c.listenAddress)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tidemark: listen on %s: %v\n", c.listenAddress, err)
			return exitRejected
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /-/healthy", func(rw http.ResponseWriter, _ *http.Request) { fmt.Fprintln(rw, "healthy") })
		mux.HandleFunc("GET /-/ready", func(rw http.ResponseWriter, _ *http.Request) {
			if !w.Ready() {
				http.Error(rw, "listing objects", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(rw, "ready")
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		g.Add(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}, func(error) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		})
	}
	if err := g.Run(); err != nil {
		logger.Error("stopped", "err", err)
		return exitUnavailable
	}
	return exitOK
}
