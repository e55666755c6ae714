package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/export"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	code, out, _ := runCLI("--help")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "serve")
	code, out, _ = runCLI("serve", "--help")
	require.Equal(t, exitOK, code)
	for _, f := range []string{"--config.file", "--otlp.grpc.listen-address", "--otlp.http.listen-address", "--otlp.max-request-bytes",
		"--metrics.listen-address", "--web.listen-address", "--log.level", "--log.format"} {
		require.Contains(t, out, f)
	}
	code, out, _ = runCLI("version")
	require.Equal(t, exitOK, code)
	require.True(t, strings.HasPrefix(out, "spanwatch, version "))
	code, _, _ = runCLI("--version")
	require.Equal(t, exitOK, code)
	code, _, errOut := runCLI("serve", "--no-such-flag")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "no-such-flag")
}

func TestServeBadConfigIsAUsageError(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(f, []byte("spanmetrics:\n  histogram:\n    explicit:\n      buckets: [5ms, 2ms]\n"), 0o644))
	code, _, errOut := runCLI("serve", "--config.file="+f)
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "bad.yaml:4")
	require.Contains(t, errOut, "spanmetrics.histogram.explicit.buckets[1]")

	code, _, errOut = runCLI("serve", "--query.url=http://mimir/prometheus", "--query.header=X-Scope-OrgID")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, `--query.header: header "X-Scope-OrgID": want "Name: value"`)
	code, _, errOut = runCLI("serve", "--query.header=X-Scope-OrgID: a")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "--query.header needs --query.url")
}

// TestServeBadWebFlagsAreUsageErrors: a web configuration file that does
// not load and a CORS expression that does not compile are usage errors
// that name the file or the flag.
func TestServeBadWebFlagsAreUsageErrors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(f, []byte("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n"), 0o644))
	code, _, errOut := runCLI("serve", "--web.config.file="+f, "--storage.path="+t.TempDir())
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "web config file "+f)
	require.Contains(t, errOut, "missing.crt")

	code, _, errOut = runCLI("serve", "--web.cors.origin=(", "--storage.path="+t.TempDir())
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "--web.cors.origin: invalid CORS origin regular expression")
}

func TestServeRunsAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // already cancelled: start, then shut down at once
	var out, errb bytes.Buffer
	code := run(ctx, []string{"serve", "--otlp.grpc.listen-address=127.0.0.1:0", "--otlp.http.listen-address=127.0.0.1:0",
		"--metrics.listen-address=127.0.0.1:0", "--web.listen-address=127.0.0.1:0", "--log.format=json",
		"--storage.path=" + t.TempDir()}, &out, &errb)
	require.Equal(t, exitOK, code, errb.String())
	require.Contains(t, errb.String(), `"msg":"spanwatch stopped"`)
}

func TestServePortInUseIsAFailure(t *testing.T) {
	code, _, errOut := runCLI("serve", "--otlp.grpc.listen-address=256.0.0.1:1", "--otlp.http.listen-address=127.0.0.1:0",
		"--metrics.listen-address=127.0.0.1:0", "--web.listen-address=127.0.0.1:0", "--storage.path="+t.TempDir())
	require.Equal(t, exitFailure, code)
	require.Contains(t, errOut, "OTLP/gRPC listen")
}

// TestServeUnwritableStorageIsAFailure: a storage path that cannot be
// created is a runtime failure (exit 1), not a usage error.
func TestServeUnwritableStorageIsAFailure(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-directory")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	code, _, errOut := runCLI("serve", "--otlp.grpc.listen-address=127.0.0.1:0", "--otlp.http.listen-address=127.0.0.1:0",
		"--metrics.listen-address=127.0.0.1:0", "--web.listen-address=127.0.0.1:0", "--storage.path="+filepath.Join(file, "data"))
	require.Equal(t, exitFailure, code, errOut)
	require.Contains(t, errOut, "opening storage")
}

func TestRemoteWriteConfigsMergeFlags(t *testing.T) {
	f := config.Default()
	f.RemoteWrite = []export.RemoteWriteConfig{{URL: "http://a/api/v1/write", ExternalLabels: map[string]string{"replica": "own"}}}
	got := remoteWriteConfigs(f, []string{"http://b/api/v1/write"}, map[string]string{"replica": "r1", "cluster": "c"})
	require.Len(t, got, 2)
	require.Equal(t, map[string]string{"replica": "own", "cluster": "c"}, got[0].ExternalLabels)
	require.Equal(t, map[string]string{"replica": "r1", "cluster": "c"}, got[1].ExternalLabels)
	require.Equal(t, export.DefaultRemoteWriteConfig().QueueSnapshots, got[1].QueueSnapshots)
	require.Equal(t, map[string]string{"replica": "own"}, f.RemoteWrite[0].ExternalLabels, "the config file's entries are not modified")
}

func TestRulesPrintAndCheck(t *testing.T) {
	code, out, errOut := runCLI("rules", "print")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "traces_span_metrics_duration_milliseconds_bucket")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "spanwatch.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("exposition:\n  naming: legacy\n  namespace: jaeger_spm\n"), 0o644))
	code, out, errOut = runCLI("rules", "print", "--config.file="+cfg)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "jaeger_spm_latency_bucket")
	pack := filepath.Join(dir, "pack.yml")
	require.NoError(t, os.WriteFile(pack, []byte(out), 0o644))
	code, out, errOut = runCLI("rules", "check", pack)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "SUCCESS: 5 rules in 1 groups")
	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte("groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: rate(\n"), 0o644))
	code, _, errOut = runCLI("rules", "check", bad)
	require.Equal(t, exitFailure, code)
	require.Contains(t, errOut, "bad.yml")
}

// TestEveryFlagIsDocumented: each flag of a command's --help appears in its
// page under docs/.
func TestEveryFlagIsDocumented(t *testing.T) {
	flag := regexp.MustCompile(`(?m)^\s+(?:-\w, )?--(?:\[no-\])?([a-z0-9.-]+)`)
	for cmd, page := range map[string]string{"serve": "serve.md", "gate": "gate.md", "loadgen": "loadgen.md", "demo": "demo.md"} {
		code, out, _ := runCLI(cmd, "--help")
		require.Equal(t, exitOK, code)
		doc, err := os.ReadFile(filepath.Join("..", "..", "docs", page))
		require.NoError(t, err)
		for _, m := range flag.FindAllStringSubmatch(out, -1) {
			if m[1] == "help" || m[1] == "version" || m[1] == "help-long" || m[1] == "help-man" {
				continue
			}
			if !strings.Contains(string(doc), "--"+m[1]) {
				t.Errorf("spanwatch %s --%s is not in docs/%s", cmd, m[1], page)
			}
		}
	}
}
