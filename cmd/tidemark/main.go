// Command tidemark is a Prometheus-compatible time series store in which
// change events are first-class.
package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit codes a CI job can rely on.
const (
	exitOK          = 0
	exitRejected    = 1 // bad usage, or the server refused the request for good
	exitUnavailable = 3 // the server could not be reached or kept failing
)

func main() {
	app := kingpin.New("tidemark", "A Prometheus-compatible time series store where change events are first-class.")
	app.Version(version)
	app.HelpFlag.Short('h')
	app.UsageWriter(os.Stdout)

	serve := newServeCmd(app)
	ev := newEventCmd(app)
	adm := newAdminCmd(app)
	an := newAnalyzeCmd(app)
	wa := newWatchCmd(app)

	cmd, err := app.Parse(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "tidemark: %v (try --help)\n", err)
		os.Exit(exitRejected)
	}
	var code int
	switch {
	case cmd == serve.cmd.FullCommand():
		code = serve.run()
	case ev.handles(cmd):
		code = ev.run(cmd)
	case adm.handles(cmd):
		code = adm.run(cmd)
	case an.handles(cmd):
		code = an.run()
	case wa.handles(cmd):
		code = wa.run()
	default:
		fmt.Fprintf(os.Stderr, "tidemark: unknown command %q\n", cmd)
		code = exitRejected
	}
	os.Exit(code)
}

// durationValue is a kingpin flag holding a Prometheus-style duration
// ("15d", "30s", "1h30m").
type durationValue struct {
	flag string
	d    *time.Duration
}

func (v durationValue) Set(s string) error {
	d, err := model.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("--%s %q is not accepted: %w (use a duration such as 30s, 5m, 15d)", v.flag, s, err)
	}
	*v.d = time.Duration(d)
	return nil
}

func (v durationValue) String() string { return model.Duration(*v.d).String() }

func durationFlag(f *kingpin.FlagClause, dst *time.Duration) {
	f.SetValue(durationValue{flag: f.Model().Name, d: dst})
}

// enumValue is a kingpin flag holding one of a few words; unlike kingpin's
// own enums, its error names the flag.
type enumValue struct {
	flag    string
	options []string
	v       *string
}

func (v enumValue) Set(s string) error {
	if !slices.Contains(v.options, s) {
		return fmt.Errorf("--%s %q is not accepted: use %s", v.flag, s, orList(v.options))
	}
	*v.v = s
	return nil
}

func (v enumValue) String() string { return *v.v }

// enumFlag makes f take one of options into dst.
func enumFlag(f *kingpin.FlagClause, dst *string, options ...string) {
	f.SetValue(enumValue{flag: f.Model().Name, options: options, v: dst})
}

// orList is "a", "a or b", "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
