// Command spanwatch turns OpenTelemetry traces into RED metrics, stores and
// serves them like Prometheus, and tells service owners when a deploy made a
// service slower or less reliable.
//
// Subcommands return errors; only main exits, with these codes:
//
//	0  success
//	1  runtime failure
//	2  usage or configuration error
//
// `spanwatch gate` has its own codes (see gate.go): 0 pass, 1 regression,
// 2 inconclusive, 3 usage or configuration error, 4 query backend failing.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/alecthomas/kingpin/v2"

	"github.com/spanwatch/spanwatch/internal/buildinfo"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks errors that are the user's to fix (flags, config).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args and runs the chosen subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// Subcommands such as demo and loadgen report from several goroutines.
	stdout, stderr = &lockedWriter{w: stdout}, &lockedWriter{w: stderr}
	app := kingpin.New("spanwatch", "Deploy regressions from OpenTelemetry traces: span metrics, a Prometheus-compatible store, and a statistical deploy gate.")
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	// kingpin exits after --help and --version; record it instead, so that
	// only main exits.
	terminated := false
	app.Terminate(func(int) { terminated = true })
	app.Version(buildinfo.Get().String())
	app.HelpFlag.Short('h')

	serve := newServeCmd(app)
	gateC := newGateCmd(app)
	rulesC := newRulesCmd(app)
	loadgenC := newLoadgenCmd(app)
	demoC := newDemoCmd(app)
	dashboardsC := newDashboardsCmd(app)
	app.Command("version", "Print the version and exit.")

	cmd, err := app.Parse(args)
	if terminated {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "spanwatch: error: %v, try --help\n", err)
		if len(args) > 0 && args[0] == "gate" {
			return gateUsage
		}
		return exitUsage
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, buildinfo.Get().String())
		return exitOK
	case "serve":
		err = serve.run(ctx, stderr)
	case "gate":
		return gateC.run(ctx, stdout, stderr)
	case "loadgen":
		err = loadgenC.run(ctx, stdout, stderr)
	case "demo":
		err = demoC.run(ctx, stdout, stderr)
	case "rules print":
		err = rulesC.print(stdout)
	case "rules check":
		return rulesC.check(stdout, stderr)
	case "dashboards grafana":
		err = dashboardsC.grafana(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "spanwatch %s: %v\n", cmd, err)
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitFailure
	}
	return exitOK
}

// newLogger builds the process logger from --log.level and --log.format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "logfmt", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log.format must be logfmt or json, got %q", format)
}

// lockedWriter serialises writes to w, so that progress lines written by
// several goroutines neither interleave nor race on a buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
