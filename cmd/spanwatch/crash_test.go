package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/spanwatch/spanwatch/internal/testutil"
)

// buildBinary builds spanwatch once per test binary.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "spanwatch")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

type process struct {
	cmd  *exec.Cmd
	web  string
	otlp string
	expo string
	logs *testutil.SyncBuffer
}

func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{web: testutil.FreeAddr(t), otlp: testutil.FreeAddr(t), expo: testutil.FreeAddr(t), logs: &testutil.SyncBuffer{}}
	p.cmd = exec.Command(bin, append([]string{"serve",
		"--web.listen-address=" + p.web,
		"--otlp.http.listen-address=" + p.otlp,
		"--otlp.grpc.listen-address=" + testutil.FreeAddr(t),
		"--metrics.listen-address=" + p.expo,
	}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_, _ = p.cmd.Process.Wait()
		if t.Failed() {
			t.Logf("spanwatch output:\n%s", p.logs.String())
		}
	})
	ready := func() bool {
		resp, err := http.Get("http://" + p.web + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if !assert.Eventually(t, ready, 60*time.Second, 20*time.Millisecond) {
		t.Fatalf("spanwatch did not become ready:\n%s", p.logs.String())
	}
	return p
}

func otlpRequest(t *testing.T, n int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "crashy")
	ss := rs.ScopeSpans().AppendEmpty()
	now := time.Now()
	for range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	return b
}

func (p *process) instant(t *testing.T, expr string, at time.Time) (float64, bool) {
	t.Helper()
	resp, err := http.PostForm("http://"+p.web+"/api/v1/query", url.Values{
		"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)},
	})
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	require.Equal(t, "success", r.Status, r.Error)
	if len(r.Data.Result) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(r.Data.Result[0].Value[1].(string), 64)
	require.NoError(t, err)
	return v, true
}

// restartable builds spanwatch and returns a function that starts it, each
// time on the same storage path, with the given flush interval.
func restartable(t *testing.T, flush string) func() *process {
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "spanwatch.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("spanmetrics:\n  metrics_flush_interval: "+flush+"\n"), 0o644))
	return func() *process {
		return startProcess(t, bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	}
}

// TestKill9KeepsFlushedSamples kills spanwatch with SIGKILL while spans
// are being ingested; after a restart on the same storage path every sample
// flushed before the kill is still there (WAL replay), and rate() reads the
// restart as a counter reset.
func TestKill9KeepsFlushedSamples(t *testing.T) {
	start := restartable(t, "200ms")
	p := start()

	req := otlpRequest(t, 10)
	var acked atomic.Int64
	send := func() {
		resp, err := http.Post("http://"+p.otlp+"/v1/traces", "application/x-protobuf", bytes.NewReader(req))
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				acked.Add(10)
			}
		}
	}
	for range 50 {
		send()
	}
	// Wait until a flush holds all 500 acknowledged spans.
	var flushedAt time.Time
	require.Eventually(t, func() bool {
		flushedAt = time.Now()
		v, ok := p.instant(t, `sum(traces_span_metrics_calls_total)`, flushedAt)
		return ok && v == 500
	}, 20*time.Second, 50*time.Millisecond)
	samplesBefore, ok := p.instant(t, `sum(count_over_time(traces_span_metrics_calls_total[10m]))`, flushedAt)
	require.True(t, ok)

	// Keep ingesting, then kill -9 in the middle of it.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			send()
		}
	}()
	// Kill once flushes written during this ingest are stored: at least
	// two more samples per series than before it.
	require.Eventually(t, func() bool {
		n, ok := p.instant(t, `sum(count_over_time(traces_span_metrics_calls_total[10m]))`, time.Now())
		return ok && n >= samplesBefore+2 && acked.Load() > 500
	}, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	killedAt := time.Now()
	_, _ = p.cmd.Process.Wait()
	cancel()
	<-done

	p2 := start()
	v, ok := p2.instant(t, `sum(traces_span_metrics_calls_total)`, flushedAt)
	require.True(t, ok, "samples flushed before the kill are there after WAL replay")
	require.Equal(t, 500.0, v)
	after, ok := p2.instant(t, `sum(count_over_time(traces_span_metrics_calls_total[10m]))`, flushedAt)
	require.True(t, ok)
	require.Equal(t, samplesBefore, after)
	// The flushes written during ingest right before the kill are there too.
	last, ok := p2.instant(t, `sum(traces_span_metrics_calls_total)`, killedAt)
	require.True(t, ok)
	require.Greater(t, last, 500.0, "flushes written during ingest right before the kill survive")
	require.LessOrEqual(t, last, float64(acked.Load()))

	// After the restart new spans start a new counter from 0: increase()
	// over the whole period still counts every span flushed before the kill
	// plus the new ones.
	for range 10 {
		send2 := func() {
			resp, err := http.Post("http://"+p2.otlp+"/v1/traces", "application/x-protobuf", bytes.NewReader(req))
			require.NoError(t, err)
			_ = resp.Body.Close()
		}
		send2()
	}
	require.Eventually(t, func() bool {
		now := time.Now()
		total, ok := p2.instant(t, `sum(increase(traces_span_metrics_calls_total[10m]))`, now)
		last, ok2 := p2.instant(t, `sum(traces_span_metrics_calls_total)`, now)
		return ok && ok2 && last == 100 && total >= 600
	}, 20*time.Second, 100*time.Millisecond, "increase() spans the restart")
	t.Logf("spans acknowledged before the kill: %d", acked.Load())
}

// TestSIGTERMFlushesThenCloses: spans acknowledged after the last periodic
// flush are written by the final flush on SIGTERM, and the process exits 0;
// a restart on the same storage finds them.
func TestSIGTERMFlushesThenCloses(t *testing.T) {
	start := restartable(t, "1h") // no periodic flush during the test
	p := start()
	for range 7 {
		resp, err := http.Post("http://"+p.otlp+"/v1/traces", "application/x-protobuf", bytes.NewReader(otlpRequest(t, 3)))
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	_, ok := p.instant(t, `sum(traces_span_metrics_calls_total)`, time.Now())
	require.False(t, ok, "nothing flushed yet")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.cmd.Wait(), "exit status 0 after SIGTERM:\n%s", p.logs.String())
	stoppedAt := time.Now()
	require.Contains(t, p.logs.String(), "spanwatch stopped")

	p2 := start()
	v, ok := p2.instant(t, `sum(traces_span_metrics_calls_total)`, stoppedAt)
	require.True(t, ok, "the final flush was stored")
	require.Equal(t, 21.0, v)
}

// TestDiskFullOnRealFilesystem fills a small tmpfs used as --storage.path:
// ingest keeps answering 200, the exposition keeps serving, /readyz
// answers 503 with the reason, and once space is freed writing resumes by
// itself. Mounting needs root; bench/soak's diskfull mode is the long run.
func TestDiskFullOnRealFilesystem(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot mount a tmpfs (CI runs as root): %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
	bin := buildBinary(t)
	cfg := filepath.Join(t.TempDir(), "spanwatch.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("spanmetrics:\n  metrics_flush_interval: 200ms\n"), 0o644))
	p := startProcess(t, bin, "--config.file="+cfg, "--storage.path="+filepath.Join(mnt, "data"))
	req := otlpRequest(t, 10)
	send := func() int {
		resp, err := http.Post("http://"+p.otlp+"/v1/traces", "application/x-protobuf", bytes.NewReader(req))
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + p.web + "/readyz")
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	stored := func() float64 {
		n, _ := p.instant(t, `sum(count_over_time(traces_span_metrics_calls_total[10m]))`, time.Now())
		return n
	}
	require.Equal(t, http.StatusOK, send())
	require.Eventually(t, func() bool { return stored() >= 1 }, 20*time.Second, 20*time.Millisecond)

	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	require.NoError(t, err)
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			break
		}
	}
	require.NoError(t, f.Close())
	var body string
	require.Eventually(t, func() bool {
		require.Equal(t, http.StatusOK, send(), "ingest keeps answering while the disk is full")
		var code int
		code, body = readyz()
		return code == http.StatusServiceUnavailable
	}, 20*time.Second, 20*time.Millisecond)
	require.Contains(t, body, "storage:")
	require.Contains(t, body, "no space left on device")
	resp, err := http.Get("http://" + p.expo + "/metrics")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the exposition serves from memory")

	require.NoError(t, os.Remove(filler))
	before := stored()
	require.Eventually(t, func() bool {
		require.Equal(t, http.StatusOK, send())
		code, _ := readyz()
		return code == http.StatusOK && stored() > before
	}, 30*time.Second, 20*time.Millisecond, "writing resumes by itself")
	require.Nil(t, p.cmd.ProcessState, "spanwatch is still running")
}
