package testutil

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Prometheus is a real Prometheus server (the Debian prometheus package)
// started by a test on loopback.
type Prometheus struct {
	URL    string
	logs   *SyncBuffer
	cmd    *exec.Cmd
	config string
}

// FreeAddr returns a loopback address that was free a moment ago and that
// no earlier call in this process returned: the kernel may hand a port
// just released to the next listener, so two addresses taken one after the
// other for the same child process could otherwise be the same.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		freeAddrsMu.Lock()
		_, used := freeAddrs[addr]
		freeAddrs[addr] = struct{}{}
		freeAddrsMu.Unlock()
		if !used {
			return addr
		}
	}
	t.Fatal("no loopback port that was not handed out before")
	return ""
}

var (
	freeAddrsMu sync.Mutex
	freeAddrs   = map[string]struct{}{}
)

// StartPrometheus runs prometheus with the given configuration file content
// and extra flags, waits until it is ready and stops it when the test ends.
func StartPrometheus(t testing.TB, config string, flags ...string) *Prometheus {
	t.Helper()
	bin := Binary(t, "prometheus")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := FreeAddr(t)
	args := append([]string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}, flags...)
	p := &Prometheus{URL: "http://" + addr, logs: &SyncBuffer{}, config: cfg}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not become ready: %v\n%s", err, p.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Sample is one element of an instant-vector result.
type Sample struct {
	Metric    map[string]string
	Value     float64
	Histogram json.RawMessage
}

// Query runs an instant query against a Prometheus-compatible API at base
// and returns the vector result.
func Query(ctx context.Context, base, expr string) ([]Sample, error) {
	resp, err := http.PostForm(base+"/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric    map[string]string  `json:"metric"`
				Value     [2]any             `json:"value"`
				Histogram [2]json.RawMessage `json:"histogram"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("decoding response to %q: %w", expr, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", expr, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %s, want vector", expr, r.Data.ResultType)
	}
	var out []Sample
	for _, s := range r.Data.Result {
		smp := Sample{Metric: s.Metric, Histogram: s.Histogram[1]}
		if str, ok := s.Value[1].(string); ok {
			if _, err := fmt.Sscan(str, &smp.Value); err != nil {
				return nil, err
			}
		}
		out = append(out, smp)
	}
	return out, nil
}

// Eventually polls expr until it returns exactly one sample whose value
// satisfies ok, or fails the test after timeout.
func Eventually(t testing.TB, base, expr string, timeout time.Duration, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []Sample
	var err error
	for time.Now().Before(deadline) {
		last, err = Query(context.Background(), base, expr)
		if err == nil && len(last) == 1 && ok(last[0].Value) {
			return last[0].Value
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("query %q: last result %+v, err %v", expr, last, err)
	return 0
}
