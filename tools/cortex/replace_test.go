// Package cortex is the module Tidemark's tests build Cortex from
// (internal/testservices.CortexBinary): go.mod requires Cortex as a tool and
// repeats its replace and exclude directives, which a dependent module does
// not inherit; without them Cortex does not build or builds against
// versions it was not released with.
package cortex

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"sort"
	"testing"

	"golang.org/x/mod/modfile"
)

const cortexPath = "github.com/cortexproject/cortex"

// TestReplacesMatchCortex checks that go.mod repeats the replace and
// exclude directives of the go.mod of the Cortex version it requires.
func TestReplacesMatchCortex(t *testing.T) {
	ours := parse(t, "go.mod")
	var version string
	for _, r := range ours.Require {
		if r.Mod.Path == cortexPath {
			version = r.Mod.Version
		}
	}
	if version == "" {
		t.Fatalf("go.mod does not require %s", cortexPath)
	}
	out, err := exec.Command("go", "mod", "download", "-json", cortexPath+"@"+version).Output()
	if err != nil {
		t.Fatalf("go mod download %s@%s: %v", cortexPath, version, err)
	}
	var dl struct{ GoMod string }
	if err := json.Unmarshal(out, &dl); err != nil {
		t.Fatal(err)
	}
	theirs := parse(t, dl.GoMod)

	if got, want := directives(ours), directives(theirs); !slices.Equal(got, want) {
		t.Errorf("replace/exclude directives differ from %s@%s's go.mod:\n got: %q\nwant: %q", cortexPath, version, got, want)
	}
}

func parse(t *testing.T, path string) *modfile.File {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse(path, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// directives lists a go.mod's replace and exclude directives, sorted.
func directives(f *modfile.File) []string {
	var out []string
	for _, r := range f.Replace {
		out = append(out, "replace "+r.Old.String()+" => "+r.New.String())
	}
	for _, e := range f.Exclude {
		out = append(out, "exclude "+e.Mod.String())
	}
	sort.Strings(out)
	return out
}
