// Package testutil holds helpers shared by spanwatch's tests: locating the
// recipe files and the real components (Prometheus, promtool) that tests run
// against, with the rule that a missing component skips a test only when the
// CI environment variable is unset, and fails it otherwise. It is imported
// by tests only.
package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// InCI reports whether the CI environment variable is set.
func InCI() bool { return os.Getenv("CI") != "" }

// Missing skips t, or fails it when running in CI, because what is
// missing.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is missing (CI is set, so this is a failure; .ci/run installs it)", what)
	}
	t.Skipf("%s is missing; skipping (set CI to make this a failure)", what)
}

// Binary returns the path of a program on PATH, or skips/fails.
func Binary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "program "+name)
	}
	return p
}

// ModuleRoot returns the directory holding spanwatch's go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.Contains(data, []byte("module github.com/spanwatch/spanwatch\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("spanwatch's go.mod not found above the working directory")
		}
		dir = parent
	}
}

// RecipeFile returns the path of a file of the recipe spanwatch replaces,
// found in ../shared/recipe beside the repository, or skips/fails.
func RecipeFile(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(ModuleRoot(t), "..", "shared", "recipe", name)
	if _, err := os.Stat(p); err != nil {
		Missing(t, "recipe file "+p)
	}
	return p
}

// RecipeConfig returns a spanwatch config file whose spanmetrics section is
// the recipe collector's spanmetrics connector block, verbatim, and whose
// exposition section carries the recipe's Prometheus exporter settings with
// the given naming.
func RecipeConfig(t testing.TB, naming string) []byte {
	t.Helper()
	data, err := os.ReadFile(RecipeFile(t, "collector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Connectors struct {
			SpanMetrics yaml.Node `yaml:"spanmetrics"`
		} `yaml:"connectors"`
		Exporters struct {
			Prometheus struct {
				Namespace   string            `yaml:"namespace"`
				ConstLabels map[string]string `yaml:"const_labels"`
			} `yaml:"prometheus"`
		} `yaml:"exporters"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{
		"spanmetrics": &doc.Connectors.SpanMetrics,
		"exposition": map[string]any{
			"naming":       naming,
			"namespace":    doc.Exporters.Prometheus.Namespace,
			"const_labels": doc.Exporters.Prometheus.ConstLabels,
		},
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SyncBuffer is a bytes.Buffer safe for a process writing while a test
// reads, for the output of processes started by tests.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
