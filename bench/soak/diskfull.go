package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

var (
	diskfullSize     = flag.String("diskfull.size", "32m", "diskfull: size of the tmpfs mounted as --storage.path")
	diskfullDuration = flag.Duration("diskfull.duration", time.Minute, "diskfull: how long the disk stays full")
)

func init() {
	register("diskfull", "fill the file system under --storage.path (a tmpfs; needs root) during ingest, then free it", runDiskFull)
}

// runDiskFull mounts a small tmpfs as the storage path, ingests, fills the
// file system to ENOSPC and keeps it full for -diskfull.duration, then
// frees it. While full: ingest keeps answering 200, /metrics keeps serving,
// /readyz answers 503 with the reason, spanwatch_store_healthy is 0, and
// the process stays up. After: writing resumes by itself.
func runDiskFull(e *env) error {
	mnt := filepath.Join(e.dir, "tmpfs")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+*diskfullSize, "tmpfs", mnt).CombinedOutput(); err != nil {
		return fmt.Errorf("cannot mount a tmpfs at %s (root is needed): %w: %s", mnt, err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			e.logf("umount %s: %v: %s", mnt, err, out)
		}
	}()
	cfg, err := e.writeConfig("diskfull.yaml", "")
	if err != nil {
		return err
	}
	s, err := e.start("--config.file="+cfg, "--storage.path="+filepath.Join(mnt, "data"))
	if err != nil {
		return err
	}
	defer func() { _ = s.stop() }()
	if _, err := s.waitReady(time.Minute, time.Now()); err != nil {
		return err
	}
	web := "http://" + s.web
	const samples = `sum(count_over_time(traces_span_metrics_calls_total{service_name="soak"}[1d]))`
	tr := newTraffic("soak", 20, 100)
	tr.run(s, 2*time.Millisecond)
	defer tr.halt()
	if err := waitFor(time.Minute, "samples stored", func() bool {
		n, ok, err := instant(web, samples, time.Now())
		return err == nil && ok && n >= 40
	}); err != nil {
		return err
	}

	// Fill the file system.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		return err
	}
	chunk := make([]byte, 64<<10)
	var filled int64
	for {
		n, err := f.Write(chunk)
		filled += int64(n)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				_ = f.Close()
				return err
			}
			break
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	fullAt := time.Now()
	e.logf("diskfull: file system full (filler %d MiB)", filled>>20)

	var (
		notReadyAfter time.Duration
		reason        string
		checks        int
	)
	ackedAtFull, _, _ := tr.counts()
	commitErrorsBefore, _ := s.selfMetric("spanwatch_store_commit_errors_total")
	for time.Since(fullAt) < *diskfullDuration {
		if !s.alive() {
			return fmt.Errorf("spanwatch exited while the disk was full: %w\n%s", s.exitErr, s.logs.String())
		}
		code, body := s.ready()
		if code == http.StatusServiceUnavailable && notReadyAfter == 0 {
			notReadyAfter, reason = time.Since(fullAt), body
		}
		if notReadyAfter > 0 && code != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz answered %d (%s) while the disk was still full", code, body)
		}
		if _, err := scrapeSum("http://"+s.expo+"/metrics", "traces_span_metrics_calls_total", `service_name="soak"`); err != nil {
			return fmt.Errorf("exposition while the disk was full: %w", err)
		}
		checks++
		time.Sleep(250 * time.Millisecond)
	}
	if notReadyAfter == 0 {
		return errors.New("/readyz never answered 503 while the disk was full")
	}
	ackedWhileFull, rejected, failed := tr.counts()
	healthy, _ := s.selfMetric("spanwatch_store_healthy")
	commitErrors, _ := s.selfMetric("spanwatch_store_commit_errors_total")
	if healthy != 0 {
		return fmt.Errorf("spanwatch_store_healthy = %v while the disk was full", healthy)
	}
	if ackedWhileFull <= ackedAtFull {
		return errors.New("ingest stopped acknowledging spans while the disk was full")
	}
	if rejected > 0 || failed > 0 {
		return fmt.Errorf("ingest refused %d and dropped %d requests while the disk was full", rejected, failed)
	}
	e.logf("diskfull: full for %s: /readyz 503 after %s (%q); ingest acked %d spans meanwhile, 0 refused; exposition served in %d checks; store commit errors +%.0f; RSS %d MiB",
		*diskfullDuration, notReadyAfter.Round(time.Millisecond), reason, ackedWhileFull-ackedAtFull, checks, commitErrors-commitErrorsBefore, rssBytes(s.cmd.Process.Pid)>>20)

	// Free the space: writing resumes by itself.
	n0, _, _ := instant(web, samples, time.Now())
	if err := os.Remove(filler); err != nil {
		return err
	}
	freedAt := time.Now()
	if err := waitFor(5*time.Minute, "/readyz 200 after the space was freed", func() bool {
		code, _ := s.ready()
		return code == http.StatusOK
	}); err != nil {
		return err
	}
	readyAfter := time.Since(freedAt)
	if err := waitFor(time.Minute, "new samples stored", func() bool {
		n, _, err := instant(web, samples, time.Now())
		return err == nil && n >= n0+40
	}); err != nil {
		return err
	}
	storedAfter := time.Since(freedAt)
	healthy, _ = s.selfMetric("spanwatch_store_healthy")
	if healthy != 1 {
		return fmt.Errorf("spanwatch_store_healthy = %v after recovery", healthy)
	}
	if strings.Contains(s.logs.String(), "panic") {
		return errors.New("spanwatch logged a panic")
	}
	e.logf("diskfull: space freed: /readyz 200 after %s, new samples stored after %s", readyAfter.Round(time.Millisecond), storedAfter.Round(time.Millisecond))
	return nil
}
