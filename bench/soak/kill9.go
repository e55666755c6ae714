package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"time"
)

var kill9Cycles = flag.Int("kill9.cycles", 20, "kill9: kill -9 and restart cycles")

func init() {
	register("kill9", "kill -9 during ingest, restart on the same storage, repeat; checks WAL replay and that stored counts never go backwards", runKill9)
}

// runKill9: in every cycle spanwatch starts on the same --storage.path
// (the restart is timed to /readyz 200), the samples stored before the
// last kill are all there again, ingest runs until a flush newer than the
// restart is stored, and the process is killed with SIGKILL while ingest
// goes on.
func runKill9(e *env) error {
	cfg, err := e.writeConfig("kill9.yaml", "")
	if err != nil {
		return err
	}
	data := filepath.Join(e.dir, "data")
	const (
		calls   = `sum(traces_span_metrics_calls_total{service_name="soak"})`
		samples = `sum(count_over_time(traces_span_metrics_calls_total{service_name="soak"}[1d]))`
	)
	var (
		restarts                []time.Duration
		lastSamples, lastStored float64
		lastSeenAt, killedAt    time.Time
		totalAcked, totalStored float64
		lastAcked, lastFailed   int64
	)
	// replayed checks, after a restart, what the killed process stored: the
	// value read before the kill is there, no stored sample went missing,
	// and the process's last value (the counter at the kill) is at most what
	// it was sent. It returns that last value.
	replayed := func(web string, cycle int) (float64, error) {
		n, _, err := instant(web, samples, time.Now())
		if err != nil {
			return 0, err
		}
		if n < lastSamples {
			return 0, fmt.Errorf("cycle %d: stored samples went backwards: %v before the kill, %v after restart", cycle, lastSamples, n)
		}
		v, ok, err := instant(web, calls, lastSeenAt)
		if err != nil {
			return 0, err
		}
		if !ok || v != lastStored {
			return 0, fmt.Errorf("cycle %d: value read before the kill was %v, after restart %v (found: %v)", cycle, lastStored, v, ok)
		}
		last, ok, err := instant(web, calls, killedAt)
		if err != nil {
			return 0, err
		}
		if !ok || last < lastStored {
			return 0, fmt.Errorf("cycle %d: last value before the kill %v < %v read before it (found: %v)", cycle, last, lastStored, ok)
		}
		if sent := float64(lastAcked + lastFailed*100); last > sent {
			return 0, fmt.Errorf("cycle %d: stored %v spans, more than the %v sent", cycle, last, sent)
		}
		lastSamples = n
		return last, nil
	}
	tr := newTraffic("soak", 20, 100)
	for cycle := 1; cycle <= *kill9Cycles; cycle++ {
		started := time.Now()
		s, err := e.start("--config.file="+cfg, "--storage.path="+data)
		if err != nil {
			return err
		}
		took, err := s.waitReady(2*time.Minute, started)
		if err != nil {
			s.kill()
			return fmt.Errorf("cycle %d: restart: %w", cycle, err)
		}
		restarts = append(restarts, took)
		web := "http://" + s.web
		// The WAL replayed: what was stored before the kill is there.
		if cycle > 1 {
			last, err := replayed(web, cycle)
			if err != nil {
				s.kill()
				return err
			}
			totalStored += last
		}
		// Ingest until two flushes of this process are stored, then kill
		// while ingest goes on.
		before, _, failedBefore := tr.counts()
		tr.run(s, 0)
		var stored float64
		err = waitFor(time.Minute, "two flushes of new spans stored", func() bool {
			n, _, err := instant(web, samples, time.Now())
			if err != nil || n < lastSamples+40 { // 20 series × 2 flushes
				return false
			}
			lastSeenAt = time.Now()
			v, ok, err := instant(web, calls, lastSeenAt)
			stored = v
			return err == nil && ok && v > 0
		})
		if err != nil {
			tr.halt()
			s.kill()
			return fmt.Errorf("cycle %d: %w", cycle, err)
		}
		lastStored = stored
		lastSamples, _, _ = instant(web, samples, time.Now())
		s.kill()
		killedAt = time.Now()
		tr.halt()
		after, _, failedAfter := tr.counts()
		lastAcked, lastFailed = after-before, failedAfter-failedBefore
		acked := float64(after - before)
		totalAcked += acked
		e.logf("cycle %2d: restart %s, spans acked %.0f, stored at kill ≥ %.0f, samples stored %.0f",
			cycle, took.Round(time.Millisecond), acked, stored, lastSamples)
	}
	// Count what the last process stored, after one more restart.
	started := time.Now()
	s, err := e.start("--config.file="+cfg, "--storage.path="+data)
	if err != nil {
		return err
	}
	defer func() { _ = s.stop() }()
	took, err := s.waitReady(2*time.Minute, started)
	if err != nil {
		return err
	}
	restarts = append(restarts, took)
	last, err := replayed("http://"+s.web, *kill9Cycles+1)
	if err != nil {
		return err
	}
	totalStored += last
	_, rejected, failed := tr.counts()
	e.logf("kill9: %d kill -9 cycles; restart to ready: %s", *kill9Cycles, stats(restarts))
	e.logf("kill9: spans acked %.0f, stored (the last value of each killed process, summed) %.0f = %.1f%%; the rest were acked after the last flush before a kill (at most one flush interval each); requests rejected %d, unanswered %d (in flight at the kills)",
		totalAcked, totalStored, 100*totalStored/totalAcked, rejected, failed)
	return nil
}
