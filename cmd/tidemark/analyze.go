package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/tidemark/tidemark/client"
)

// exitVerdictFailed is the exit code of an analysis whose canary failed,
// or was marginal without --allow-marginal.
const exitVerdictFailed = 2

// analyzeCmd is the canary judge's client: tidemark analyze -f request.json.
type analyzeCmd struct {
	cmd *kingpin.CmdClause

	url, org, token string
	file            string
	json            bool
	allowMarginal   bool
	retries         int
	timeout         time.Duration
}

func newAnalyzeCmd(app *kingpin.Application) *analyzeCmd {
	c := &analyzeCmd{}
	c.cmd = app.Command("analyze", "Judge a canary against its baseline with the server's canary judge (docs/canary-judge.md). "+
		"Exits 0 on pass, 1 on bad usage or a request the server refused, 2 on fail (and on marginal unless --allow-marginal), 3 when the server could not be reached.")
	c.cmd.Flag("url", "Server URL.").Envar("TIDEMARK_URL").Default("http://localhost:9470").StringVar(&c.url)
	c.cmd.Flag("org", "Organization.").Envar("TIDEMARK_ORG").Default("default").StringVar(&c.org)
	c.cmd.Flag("token", "Token with read scope.").Envar("TIDEMARK_TOKEN").StringVar(&c.token)
	c.cmd.Flag("file", "The analysis request as JSON; - reads it from standard input.").Short('f').Required().StringVar(&c.file)
	c.cmd.Flag("json", "Print the server's JSON report instead of a table.").BoolVar(&c.json)
	c.cmd.Flag("allow-marginal", "Exit 0 on a marginal verdict (default: 2, as on fail).").BoolVar(&c.allowMarginal)
	c.cmd.Flag("retries", "Retries on 429, 5xx and network errors, with backoff.").Default("3").IntVar(&c.retries)
	durationFlag(c.cmd.Flag("timeout", "Overall time limit, retries included.").Default("2m"), &c.timeout)
	return c
}

func (c *analyzeCmd) handles(cmd string) bool { return cmd == c.cmd.FullCommand() }

func (c *analyzeCmd) run() int {
	body, err := c.request()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: analyze: %v\n", err)
		return exitRejected
	}
	u, err := url.Parse(c.url)
	if err != nil || u.Scheme == "" || u.Host == "" {
		fmt.Fprintf(os.Stderr, "tidemark: analyze: --url %q is not a server URL; accepted: e.g. http://tidemark:9470\n", c.url)
		return exitRejected
	}
	if c.org == "" {
		fmt.Fprintln(os.Stderr, "tidemark: analyze: no organization: set --org or TIDEMARK_ORG")
		return exitRejected
	}
	cl, err := client.New(client.Options{
		URL: c.url, Org: c.org, Token: c.token, Retries: c.retries,
		// No per-request timeout: an analysis runs its queries before it
		// answers, and --timeout bounds the whole.
		HTTPClient: &http.Client{},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: analyze: %v\n", err)
		return exitRejected
	}

	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rep, err := cl.Analyze(ctx, body)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: analyze: %v\n", err)
		var rej *client.RejectedError
		if errors.As(err, &rej) {
			return exitRejected
		}
		return exitUnavailable
	}
	if c.json {
		var out bytes.Buffer
		if json.Indent(&out, rep.Raw, "", "  ") != nil {
			out.Reset()
			out.Write(rep.Raw)
		}
		fmt.Println(strings.TrimSpace(out.String()))
	} else {
		printReport(os.Stdout, &rep)
	}
	switch {
	case rep.Verdict == client.VerdictPass:
		return exitOK
	case rep.Verdict == client.VerdictMarginal && c.allowMarginal:
		return exitOK
	}
	return exitVerdictFailed
}

// request reads the request body from --file or standard input.
func (c *analyzeCmd) request() ([]byte, error) {
	var b []byte
	var err error
	// kingpin hands a separate "-" (as in -f -) over as an empty value.
	if c.file == "-" || c.file == "" {
		c.file = "standard input"
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(c.file)
	}
	if err != nil {
		return nil, fmt.Errorf("read the request: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("the request in %s is empty; accepted: an analysis request as JSON (docs/canary-judge.md)", c.file)
	}
	return b, nil
}

// printReport writes a report as a readable summary and table.
func printReport(w io.Writer, rep *client.AnalysisReport) {
	fmt.Fprintf(w, "verdict  %s (score %s): %s\n", rep.Verdict, strconv.FormatFloat(rep.Score, 'f', -1, 64), rep.Reason)
	win := rep.Window
	fmt.Fprintf(w, "window   %s to %s, step %s, %d points", win.Start, win.End, win.Step, win.Points)
	if ev := win.Event; ev != nil {
		open := ""
		if ev.Open {
			open = ", still open"
		}
		fmt.Fprintf(w, ", event %s%s%s", ev.Name, formatLabels(ev.Labels), open)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tCLASS\tCRITICAL\tWEIGHT\tP-VALUE\tEFFECT\tCANARY\tBASELINE")
	for _, m := range rep.Metrics {
		critical := "no"
		switch {
		case m.CriticalFailure:
			critical = "FAILED"
		case m.Critical:
			critical = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", m.Name, m.Classification, critical,
			strconv.FormatFloat(m.Weight, 'g', -1, 64), number(m.PValue), number(m.Effect)+" "+m.EffectMeasure, m.CanaryPoints, m.BaselinePoints)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, m := range rep.Metrics {
		fmt.Fprintf(w, "%s: %s\n", m.Name, m.Reason)
		for _, warn := range m.Warnings {
			fmt.Fprintf(w, "%s: warning: %s\n", m.Name, warn)
		}
	}
	if ev := rep.Event; ev != nil {
		if ev.Error != "" {
			fmt.Fprintf(w, "not recorded: %s\n", ev.Error)
		} else {
			fmt.Fprintf(w, "recorded as event %s%s (id %s)\n", ev.Name, formatLabels(ev.Labels), ev.ID)
		}
	}
}

func number(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f, 'g', 3, 64)
}

func formatLabels(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
