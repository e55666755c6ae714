package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

var (
	rwDown       = flag.Duration("remotewrite.down", 5*time.Minute, "remotewrite: how long the destination stays down")
	rwPrometheus = flag.String("remotewrite.prometheus", "prometheus", "remotewrite: the Prometheus binary that receives remote write")
	rwQueue      = flag.Int("remotewrite.queue", 4, "remotewrite: queue_snapshots of the spanwatch under test")
)

func init() {
	register("remotewrite", "stop a real Prometheus receiving remote write, keep it down, restart it; checks the queue stays bounded and catches up", runRemoteWrite)
}

type prometheusProc struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
}

func startPrometheus(e *env, addr string) (*prometheusProc, error) {
	cfg := filepath.Join(e.dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1m\n"), 0o644); err != nil {
		return nil, err
	}
	p := &prometheusProc{addr: addr, exited: make(chan struct{})}
	p.cmd = exec.Command(*rwPrometheus, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(e.dir, "prometheus"),
		"--web.listen-address="+addr, "--web.enable-remote-write-receiver", "--enable-feature=native-histograms")
	logs := &lockedBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", *rwPrometheus, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	err := waitFor(time.Minute, "Prometheus ready", func() bool {
		resp, err := client.Get("http://" + addr + "/-/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("%w:\n%s", err, logs.String())
	}
	return p, nil
}

func (p *prometheusProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// runRemoteWrite: spanwatch remote-writes every flush to a real
// Prometheus; Prometheus is stopped for -remotewrite.down while ingest goes
// on, then restarted on the same storage and port. While it is down the
// queue never holds more than queue_snapshots snapshots and RSS stays
// flat; after, the queue drains and Prometheus has the latest flush.
func runRemoteWrite(e *env) error {
	addr := freeAddr()
	prom, err := startPrometheus(e, addr)
	if err != nil {
		return err
	}
	defer func() { prom.stop() }()
	cfg, err := e.writeConfig("remotewrite.yaml", fmt.Sprintf(
		"remote_write:\n  - url: http://%s/api/v1/write\n    name: prom\n    queue_snapshots: %d\n", addr, *rwQueue))
	if err != nil {
		return err
	}
	s, err := e.start("--config.file="+cfg, "--storage.path="+filepath.Join(e.dir, "data"))
	if err != nil {
		return err
	}
	defer func() { _ = s.stop() }()
	if _, err := s.waitReady(time.Minute, time.Now()); err != nil {
		return err
	}
	tr := newTraffic("soak", 200, 200)
	tr.run(s, 5*time.Millisecond)
	defer tr.halt()
	promAPI := "http://" + addr
	// lag is how far Prometheus's newest soak sample is behind now.
	lag := func() (time.Duration, bool) {
		v, ok, err := instant(promAPI, `time() - max(timestamp(traces_span_metrics_calls_total{service_name="soak"}))`, time.Now())
		if err != nil || !ok {
			return 0, false
		}
		return time.Duration(v * float64(time.Second)), true
	}
	if err := waitFor(time.Minute, "remote write flowing", func() bool {
		l, ok := lag()
		return ok && l < 3*e.flush
	}); err != nil {
		return err
	}
	rssBefore := rssBytes(s.cmd.Process.Pid)
	droppedBefore, _ := s.selfMetric("spanwatch_remote_write_samples_dropped_total", `reason="queue_full"`)

	prom.stop()
	downAt := time.Now()
	e.logf("remotewrite: Prometheus stopped for %s", *rwDown)
	var maxQueue, maxRSS float64
	minRSS := math.Inf(1)
	for time.Since(downAt) < *rwDown {
		if !s.alive() {
			return fmt.Errorf("spanwatch exited: %w\n%s", s.exitErr, s.logs.String())
		}
		q, err := s.selfMetric("spanwatch_remote_write_queue_length")
		if err != nil {
			return err
		}
		maxQueue = math.Max(maxQueue, q)
		rss := float64(rssBytes(s.cmd.Process.Pid))
		maxRSS, minRSS = math.Max(maxRSS, rss), math.Min(minRSS, rss)
		time.Sleep(time.Second)
	}
	dropped, _ := s.selfMetric("spanwatch_remote_write_samples_dropped_total", `reason="queue_full"`)
	failedReq, _ := s.selfMetric("spanwatch_remote_write_requests_failed_total")
	e.logf("remotewrite: while down: queue length max %.0f (limit %d), RSS %d MiB before, %d–%d MiB during; samples dropped from the full queue %.0f; requests failed %.0f",
		maxQueue, *rwQueue, rssBefore>>20, int64(minRSS)>>20, int64(maxRSS)>>20, dropped-droppedBefore, failedReq)
	if maxQueue > float64(*rwQueue) {
		return fmt.Errorf("queue grew to %.0f, past its limit %d", maxQueue, *rwQueue)
	}

	prom, err = startPrometheus(e, addr)
	if err != nil {
		return err
	}
	upAt := time.Now()
	if err := waitFor(5*time.Minute, "remote write caught up", func() bool {
		q, err := s.selfMetric("spanwatch_remote_write_queue_length")
		l, ok := lag()
		return err == nil && q <= 1 && ok && l < 3*e.flush
	}); err != nil {
		return err
	}
	caughtUp := time.Since(upAt)
	// The newest value matches spanwatch's own stored one.
	at := time.Now().Add(-2 * e.flush)
	mine, _, err1 := instant("http://"+s.web, `sum(traces_span_metrics_calls_total{service_name="soak"})`, at)
	theirs, _, err2 := instant(promAPI, `sum(traces_span_metrics_calls_total{service_name="soak"})`, at)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	acked, rejected, failed := tr.counts()
	e.logf("remotewrite: Prometheus back: caught up (queue drained, newest sample < %s old) after %s; at %s spanwatch stored %.0f spans, Prometheus has %.0f; spans acked %d, rejected %d, unanswered %d",
		3*e.flush, caughtUp.Round(time.Millisecond), at.UTC().Format("15:04:05"), mine, theirs, acked, rejected, failed)
	if mine != theirs {
		return fmt.Errorf("after catching up Prometheus has %.0f, spanwatch %.0f", theirs, mine)
	}
	return nil
}
