package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/state"
)

// eventCmd is the change-event client: tidemark event start|stop|wrap.
type eventCmd struct {
	start, stop, wrap *kingpin.CmdClause

	url, org, token string
	retries         int
	timeout         time.Duration

	name      string
	attrs     map[string]string
	meta      map[string]string
	links     []string
	timestamp string
	id        string
	command   []string
}

func newEventCmd(app *kingpin.Application) *eventCmd {
	c := &eventCmd{attrs: map[string]string{}, meta: map[string]string{}}
	ev := app.Command("event", "Write change events to a Tidemark server (for CI jobs and rollout steps).")
	ev.Flag("url", "Server URL.").Envar("TIDEMARK_URL").Default("http://localhost:9470").StringVar(&c.url)
	ev.Flag("org", "Organization.").Envar("TIDEMARK_ORG").Default("default").StringVar(&c.org)
	ev.Flag("token", "Token with write scope.").Envar("TIDEMARK_TOKEN").StringVar(&c.token)
	ev.Flag("retries", "Retries on 429, 5xx and network errors, with backoff.").Default("5").IntVar(&c.retries)
	durationFlag(ev.Flag("timeout", "Overall time limit for writing one event, retries included.").Default("2m"), &c.timeout)

	common := func(cc *kingpin.CmdClause) {
		cc.Arg("name", "Event name, e.g. checkout-deploy or sample-app-20.").Required().StringVar(&c.name)
		cc.Flag("attr", "Attribute k=v, a label of the event's series (repeatable).").Short('a').StringMapVar(&c.attrs)
		cc.Flag("meta", "Metadata k=v, kept in the event log only (repeatable).").Short('m').StringMapVar(&c.meta)
		cc.Flag("link", "A link kept with the event: URL or URL=text (repeatable).").StringsVar(&c.links)
	}
	c.start = ev.Command("start", "Write a start event.")
	common(c.start)
	c.start.Flag("timestamp", "Event time (RFC 3339 or epoch); default now.").StringVar(&c.timestamp)
	c.start.Flag("id", "Idempotency key; default a random one per invocation.").StringVar(&c.id)
	c.stop = ev.Command("stop", "Write a stop event.")
	common(c.stop)
	c.stop.Flag("timestamp", "Event time (RFC 3339 or epoch); default now.").StringVar(&c.timestamp)
	c.stop.Flag("id", "Idempotency key; default a random one per invocation.").StringVar(&c.id)
	c.wrap = ev.Command("wrap", "Write a start, run a command, write a stop with its exit status (attribute exit_code, and outcome), and exit with the command's status.")
	common(c.wrap)
	c.wrap.Arg("command", "The command to run, after --.").Required().StringsVar(&c.command)
	return c
}

func (c *eventCmd) handles(cmd string) bool {
	return cmd == c.start.FullCommand() || cmd == c.stop.FullCommand() || cmd == c.wrap.FullCommand()
}

func (c *eventCmd) client() (*client.Client, error) {
	return client.New(client.Options{URL: c.url, Org: c.org, Token: c.token, Retries: c.retries})
}

func (c *eventCmd) event(st string, attrs map[string]string) (client.Event, error) {
	ev := client.Event{Name: c.name, State: st, Timestamp: c.timestamp, Attributes: attrs, ID: c.id}
	if ev.ID == "" {
		// One random id per event: a retry after a lost answer is stored once.
		ev.ID = "cli-" + strings.TrimPrefix(state.NewToken(), state.TokenPrefix)[:22]
	}
	if len(c.meta) > 0 {
		ev.Metadata = c.meta
	}
	for _, l := range c.links {
		href, text, _ := strings.Cut(l, "=")
		if href == "" {
			return ev, fmt.Errorf("--link %q: accepted: URL or URL=text", l)
		}
		ev.Links = append(ev.Links, client.Link{Href: href, Text: text})
	}
	return ev, nil
}

func (c *eventCmd) send(cl *client.Client, ev client.Event) int {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	res, err := cl.Write(ctx, ev)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: event %s %s: %v\n", ev.Name, ev.State, err)
		var rej *client.RejectedError
		if errors.As(err, &rej) {
			return exitRejected
		}
		return exitUnavailable
	}
	dup := ""
	if res.Duplicate {
		dup = " (already stored)"
	}
	fmt.Fprintf(os.Stderr, "tidemark: event %s %s stored as %s at %s%s\n", ev.Name, ev.State, res.ID, res.Timestamp, dup)
	return exitOK
}

func (c *eventCmd) run(cmd string) int {
	cl, err := c.client()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: %v\n", err)
		return exitRejected
	}
	switch cmd {
	case c.start.FullCommand(), c.stop.FullCommand():
		st := "start"
		if cmd == c.stop.FullCommand() {
			st = "stop"
		}
		ev, err := c.event(st, c.attrs)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tidemark: %v\n", err)
			return exitRejected
		}
		return c.send(cl, ev)
	default:
		return c.runWrap(cl)
	}
}

// runWrap writes a start, runs the command, and writes a stop. The
// command's exit status is what it returns: a failure to write an event is
// reported but does not change it.
func (c *eventCmd) runWrap(cl *client.Client) int {
	ev, err := c.event("start", c.attrs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: %v\n", err)
		return exitRejected
	}
	c.send(cl, ev)

	cmd := exec.Command(c.command[0], c.command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	status := 0
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: run %q: %v\n", c.command[0], err)
		status = 127
	} else {
		go func() {
			for s := range sigs {
				cmd.Process.Signal(s)
			}
		}()
		if err := cmd.Wait(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
				if status < 0 {
					status = 128 + int(syscall.SIGTERM)
				}
			} else {
				status = 1
			}
		}
	}

	attrs := map[string]string{}
	for k, v := range c.attrs {
		attrs[k] = v
	}
	attrs["exit_code"] = strconv.Itoa(status)
	attrs["outcome"] = "success"
	if status != 0 {
		attrs["outcome"] = "failure"
	}
	c.id = ""
	stop, _ := c.event("stop", attrs)
	c.send(cl, stop)
	return status
}
