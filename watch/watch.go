// Package watch records changes made in a Kubernetes cluster as change
// events: rollouts of Deployments, StatefulSets, DaemonSets and Argo
// Rollouts (with their canary steps, weights, pauses and promotions),
// HorizontalPodAutoscaler scales, and ConfigMap and Secret content changes.
//
// It follows the objects with client-go informers and writes events to a
// Sink (a Tidemark server, through the client package). Event ids are
// derived from the objects (ids.go), so a watcher that restarts and lists
// every object again writes nothing twice. What is recorded, and the labels,
// are described in docs/kubernetes.md.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/tidemark/tidemark/client"
)

// Options configures a Watcher.
type Options struct {
	// Kube is the Kubernetes API client.
	Kube kubernetes.Interface
	// Dynamic reads Argo Rollouts; nil when they are not watched.
	Dynamic dynamic.Interface
	// Namespaces to watch; empty: all.
	Namespaces []string
	// Selector is a label selector the objects must match ("" matches all).
	Selector string
	// Kinds to watch; empty: all of AllKinds (Rollouts only with Dynamic).
	Kinds []Kind
	// Attributes are labels added to every event, e.g. cluster=prod-eu.
	Attributes map[string]string
	// Sink stores the events.
	Sink Sink
	// CatchUpWindow is how long after a rollout finished a watcher that
	// finds it finished (on start) still writes its stop, in case a
	// watcher before a restart wrote its start. 0: never.
	CatchUpWindow time.Duration
	// QueueSize is the most events held while the sink fails (default
	// 100000); MaxBatch the most written in one request (default 500).
	QueueSize, MaxBatch int
	// FlushTimeout bounds how long Run writes queued events after its
	// context ends (default 10s).
	FlushTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Watcher follows Kubernetes objects and writes their changes as events.
type Watcher struct {
	logger *slog.Logger
	opts   Options
	kinds  []Kind
	// selector is checked here too: the API server filters lists and
	// watches, but not every client (fakes) does.
	selector labels.Selector
	tracker  *tracker
	queue    *queue
	ready    atomic.Bool
}

// New returns a watcher; Run starts it.
func New(logger *slog.Logger, reg prometheus.Registerer, opts Options) (*Watcher, error) {
	if opts.Kube == nil {
		return nil, errors.New("no Kubernetes client")
	}
	if opts.Sink == nil {
		return nil, errors.New("no sink for the events")
	}
	selector, err := labels.Parse(opts.Selector)
	if err != nil {
		return nil, fmt.Errorf("label selector %q: %w", opts.Selector, err)
	}
	for k, v := range opts.Attributes {
		if !model.LegacyValidation.IsValidLabelName(k) || k == "event_name" || k == "event_state" || len(k) >= 2 && k[:2] == "__" {
			return nil, fmt.Errorf("attribute %q: not a label name; accepted: [a-zA-Z_][a-zA-Z0-9_]*, not __..., event_name or event_state", k)
		}
		if v == "" {
			return nil, fmt.Errorf("attribute %q: empty value", k)
		}
	}
	kinds := opts.Kinds
	if len(kinds) == 0 {
		for _, k := range AllKinds {
			if k != Rollouts || opts.Dynamic != nil {
				kinds = append(kinds, k)
			}
		}
	}
	if slices.Contains(kinds, Rollouts) && opts.Dynamic == nil {
		return nil, errors.New("kind rollouts needs a dynamic client")
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 100000
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 500
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	f := promauto.With(reg)
	w := &Watcher{logger: logger, opts: opts, kinds: kinds, selector: selector}
	w.queue = &queue{
		logger: logger, sink: opts.Sink, max: opts.QueueSize, maxBatch: opts.MaxBatch,
		minBackoff: time.Second, maxBackoff: 30 * time.Second,
		signal: make(chan struct{}, 1),
		written: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tidemark_watch_events_written_total", Help: "Change events written, by event name and state.",
		}, []string{"event_name", "event_state"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tidemark_watch_events_dropped_total", Help: "Change events given up: refused by the server, over the queue size, or left at shutdown.",
		}, []string{"reason"}),
		failures: f.NewCounter(prometheus.CounterOpts{
			Name: "tidemark_watch_write_failures_total", Help: "Writes that failed and were retried.",
		}),
	}
	w.tracker = newTracker(opts.Now, func(evs []client.Event) {
		for _, ev := range evs {
			logger.Debug("change", "event", ev.Name, "state", ev.State, "id", ev.ID, "labels", ev.Attributes)
		}
		w.queue.push(evs)
	})
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "tidemark_watch_queue_events", Help: "Change events waiting to be written."},
		func() float64 { return float64(w.queue.len()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "tidemark_watch_open_regions", Help: "Started events whose stop is not yet written (rollouts under way)."},
		func() float64 { return float64(w.tracker.openCount()) })
	return w, nil
}

// Kinds are the kinds the watcher follows.
func (w *Watcher) Kinds() []Kind { return w.kinds }

// Ready reports whether every informer has listed its objects and the
// watcher has handled them.
func (w *Watcher) Ready() bool { return w.ready.Load() }

// Pending is the number of events decided and not yet written.
func (w *Watcher) Pending() int { return w.queue.len() }

// handler turns one kind's object updates into events.
type handler interface {
	// add handles an object seen for the first time: in the informer's
	// initial list (initial), or created since.
	add(c *change, obj any, initial bool)
	// update handles a change of the object.
	update(c *change, old, cur any)
}

// handlerFor makes the kind's informer event handler.
func (w *Watcher) handlerFor(kind Kind) (handler, cache.TransformFunc) {
	static, window := w.opts.Attributes, w.opts.CatchUpWindow
	switch kind {
	case Deployments:
		return &workloads{static: static, window: window, view: deploymentView}, nil
	case StatefulSets:
		return &workloads{static: static, window: window, view: statefulSetView}, nil
	case DaemonSets:
		return &workloads{static: static, window: window, view: daemonSetView}, nil
	case Rollouts:
		return &argoRollouts{static: static, window: window}, nil
	case HPAs:
		return &hpas{static: static}, nil
	case ConfigMaps:
		return &configs{static: static}, redactConfigMap
	case Secrets:
		return &configs{static: static}, redactSecret
	}
	return nil, nil
}

// eventHandler adapts a handler to the informer's callbacks.
func (w *Watcher) eventHandler(kind Kind, h handler) cache.ResourceEventHandler {
	run := func(obj any, f func(c *change)) {
		m, ok := obj.(metav1.Object)
		if !ok || !w.selector.Matches(labels.Set(m.GetLabels())) {
			return
		}
		defer func() {
			if r := recover(); r != nil {
				w.logger.Error("handling an object failed", "kind", kind, "namespace", m.GetNamespace(), "name", m.GetName(), "err", fmt.Sprint(r))
			}
		}()
		w.tracker.handle(m.GetUID(), f)
	}
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			run(obj, func(c *change) { h.add(c, obj, initial) })
		},
		UpdateFunc: func(old, cur any) {
			run(cur, func(c *change) { h.update(c, old, cur) })
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			run(obj, func(c *change) { c.stopAll(outcomeDeleted, nil) })
		},
	}
}

// Run follows the objects until ctx ends, then writes what is queued (for
// at most FlushTimeout) and returns. It returns an error when the informers
// could not list the objects.
func (w *Watcher) Run(ctx context.Context) error {
	wctx, cancelWrites := context.WithCancel(context.Background())
	defer cancelWrites()
	stopWriter := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { w.queue.run(wctx, stopWriter) })

	namespaces := w.opts.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	tweak := func(o *metav1.ListOptions) { o.LabelSelector = w.opts.Selector }
	type starter interface {
		Start(<-chan struct{})
		Shutdown()
	}
	var factories []starter
	var synced []cache.InformerSynced
	var err error
	for _, ns := range namespaces {
		kf := informers.NewSharedInformerFactoryWithOptions(w.opts.Kube, 0, informers.WithNamespace(ns), informers.WithTweakListOptions(tweak))
		factories = append(factories, kf)
		var df dynamicinformer.DynamicSharedInformerFactory
		if w.opts.Dynamic != nil {
			df = dynamicinformer.NewFilteredDynamicSharedInformerFactory(w.opts.Dynamic, 0, ns, tweak)
			factories = append(factories, df)
		}
		for _, kind := range w.kinds {
			var inf cache.SharedIndexInformer
			switch kind {
			case Deployments:
				inf = kf.Apps().V1().Deployments().Informer()
			case StatefulSets:
				inf = kf.Apps().V1().StatefulSets().Informer()
			case DaemonSets:
				inf = kf.Apps().V1().DaemonSets().Informer()
			case HPAs:
				inf = kf.Autoscaling().V2().HorizontalPodAutoscalers().Informer()
			case ConfigMaps:
				inf = kf.Core().V1().ConfigMaps().Informer()
			case Secrets:
				inf = kf.Core().V1().Secrets().Informer()
			case Rollouts:
				inf = df.ForResource(RolloutsResource).Informer()
			}
			h, transform := w.handlerFor(kind)
			if transform != nil {
				if e := inf.SetTransform(transform); e != nil {
					err = errors.Join(err, fmt.Errorf("%s informer: %w", kind, e))
				}
			}
			reg, e := inf.AddEventHandler(w.eventHandler(kind, h))
			if e != nil {
				err = errors.Join(err, fmt.Errorf("%s informer: %w", kind, e))
				continue
			}
			synced = append(synced, reg.HasSynced)
		}
	}
	if err == nil {
		for _, f := range factories {
			f.Start(ctx.Done())
		}
		w.logger.Info("watching", "kinds", kindList(w.kinds), "namespaces", w.opts.Namespaces, "selector", w.opts.Selector)
		if cache.WaitForCacheSync(ctx.Done(), synced...) {
			w.ready.Store(true)
			w.logger.Info("listed every object; following changes", "open_regions", w.tracker.openCount(), "queued_events", w.queue.len())
		} else if ctx.Err() == nil {
			err = errors.New("informers did not sync")
		}
		<-ctx.Done()
	}
	for _, f := range factories {
		f.Shutdown()
	}
	// Let the writer finish what is queued, within the flush timeout.
	close(stopWriter)
	t := time.AfterFunc(w.opts.FlushTimeout, cancelWrites)
	defer t.Stop()
	wg.Wait()
	w.ready.Store(false)
	return err
}
