package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

var client = &http.Client{Timeout: 10 * time.Second}

// freeAddr returns a loopback address nobody listens on.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// spanwatch is one running spanwatch process.
type spanwatch struct {
	cmd                   *exec.Cmd
	web, otlp, expo, grpc string
	logs                  *lockedBuffer
	exited                chan struct{}
	exitErr               error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// writeConfig writes a spanwatch config file with the flush interval and
// extra YAML, and returns its path.
func (e *env) writeConfig(name, extra string) (string, error) {
	p := filepath.Join(e.dir, name)
	cfg := fmt.Sprintf("spanmetrics:\n  metrics_flush_interval: %s\n%s", e.flush, extra)
	return p, os.WriteFile(p, []byte(cfg), 0o644)
}

// start runs spanwatch serve with args on fresh loopback ports and returns
// once the process has been started (not once it is ready).
func (e *env) start(args ...string) (*spanwatch, error) {
	s := &spanwatch{web: freeAddr(), otlp: freeAddr(), expo: freeAddr(), grpc: freeAddr(), logs: &lockedBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(e.bin, append([]string{"serve",
		"--web.listen-address=" + s.web,
		"--otlp.http.listen-address=" + s.otlp,
		"--otlp.grpc.listen-address=" + s.grpc,
		"--metrics.listen-address=" + s.expo,
	}, args...)...)
	var out io.Writer = s.logs
	if e.verbose {
		out = io.MultiWriter(s.logs, os.Stderr)
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.exitErr = s.cmd.Wait(); close(s.exited) }()
	return s, nil
}

// alive reports whether the process has not exited.
func (s *spanwatch) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to go.
func (s *spanwatch) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// stop sends SIGTERM and waits up to a minute, then kills.
func (s *spanwatch) stop() error {
	if !s.alive() {
		return s.exitErr
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.exitErr
	case <-time.After(time.Minute):
		s.kill()
		return errors.New("did not stop within a minute of SIGTERM")
	}
}

// ready returns /readyz's status code and body.
func (s *spanwatch) ready() (int, string) {
	resp, err := client.Get("http://" + s.web + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// waitReady waits until /readyz answers 200 and returns how long it took.
func (s *spanwatch) waitReady(timeout time.Duration, since time.Time) (time.Duration, error) {
	err := waitFor(timeout, "/readyz 200", func() bool {
		if !s.alive() {
			return true
		}
		code, _ := s.ready()
		return code == http.StatusOK
	})
	if !s.alive() {
		return 0, fmt.Errorf("spanwatch exited: %w\n%s", s.exitErr, s.logs.String())
	}
	return time.Since(since), err
}

// selfMetric sums the samples of a spanwatch self-metric (web /metrics)
// whose label text contains every one of labels.
func (s *spanwatch) selfMetric(name string, labels ...string) (float64, error) {
	return scrapeSum("http://"+s.web+"/metrics", name, labels...)
}

func scrapeSum(u, name string, labels ...string) (float64, error) {
	resp, err := client.Get(u)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				continue next
			}
		}
		f := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", line, err)
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("%s: no sample of %s%v", u, name, labels)
	}
	return sum, sc.Err()
}

// instant runs a PromQL instant query at t against a Prometheus API base URL
// and returns the first sample's value, or ok=false for an empty result.
func instant(base, expr string, t time.Time) (float64, bool, error) {
	resp, err := client.PostForm(base+"/api/v1/query", url.Values{
		"query": {expr}, "time": {strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)},
	})
	if err != nil {
		return 0, false, err
	}
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Status, Error string
		Data          struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, false, err
	}
	if r.Status != "success" {
		return 0, false, fmt.Errorf("query %s: %s", expr, r.Error)
	}
	if len(r.Data.Result) == 0 {
		return 0, false, nil
	}
	v, err := strconv.ParseFloat(r.Data.Result[0].Value[1].(string), 64)
	return v, true, err
}

// rssBytes is the resident set size of pid.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// traffic is an OTLP/HTTP sender: one request of spansPerRequest spans over
// operations distinct span names, sent back to back until stopped.
type traffic struct {
	req             []byte
	spansPerRequest int

	mu       sync.Mutex
	acked    int64 // spans answered 200
	rejected int64 // requests answered otherwise
	failed   int64 // requests without an answer
	stop     chan struct{}
	done     chan struct{}
}

func newTraffic(service string, operations, spansPerRequest int) *traffic {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	now := time.Now()
	for i := range spansPerRequest {
		sp := ss.Spans().AppendEmpty()
		sp.SetName(fmt.Sprintf("op-%d", i%operations))
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i%50+1) * time.Millisecond)))
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		panic(err)
	}
	return &traffic{req: b, spansPerRequest: spansPerRequest}
}

// run sends to s until stopped, pausing pause between requests.
func (t *traffic) run(s *spanwatch, pause time.Duration) {
	t.stop, t.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(t.done)
		for {
			select {
			case <-t.stop:
				return
			default:
			}
			resp, err := client.Post("http://"+s.otlp+"/v1/traces", "application/x-protobuf", bytes.NewReader(t.req))
			t.mu.Lock()
			switch {
			case err != nil:
				t.failed++
			case resp.StatusCode == http.StatusOK:
				t.acked += int64(t.spansPerRequest)
			default:
				t.rejected++
			}
			t.mu.Unlock()
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			if pause > 0 {
				time.Sleep(pause)
			}
		}
	}()
}

func (t *traffic) halt() {
	if t.stop != nil {
		close(t.stop)
		<-t.done
		t.stop = nil
	}
}

func (t *traffic) counts() (acked, rejected, failed int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.acked, t.rejected, t.failed
}

// stats summarises durations.
func stats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return fmt.Sprintf("min %s, median %s, p90 %s, max %s (n=%d)",
		s[0].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond),
		s[len(s)*9/10].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), len(s))
}
