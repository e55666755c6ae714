package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/gate"
	"github.com/spanwatch/spanwatch/internal/loadgen"
)

const demoHelp = `Try spanwatch in one command: serve, traffic, deploys that spanwatch judges by itself, and the gate's verdict.

Starts spanwatch on a temporary data directory and the built-in shop traffic (frontend → cart,
frontend → checkout → payments, with database calls). After a minute a canary checkout v2 serves 20 %
of checkout's traffic and its POST /charge gets slower through its database call; when enough data is
in, the gate runs and prints its verdict. At the same minute payments v2 replaces v1 in a rolling
update (slower) and a canary cart v2 (as fast) serves half of cart's traffic: spanwatch detects the
three deployments itself and the demo prints their automatic verdicts as they arrive. Open the printed
URL meanwhile. Ctrl-C stops the demo and removes its data. See docs/demo.md.`

type demoCmd struct {
	webAddr     string
	grpcAddr    string
	metricsAddr string
	rate        float64
	// The timeline; hidden flags so that tests can run it in seconds.
	canaryAfter model.Duration
	gateAfter   model.Duration
	window      model.Duration
	poll        model.Duration
	maxWait     model.Duration
	flush       model.Duration
	exitAfter   bool
	logLevel    string
}

func newDemoCmd(a *kingpin.Application) *demoCmd {
	c := &demoCmd{}
	cmd := a.Command("demo", demoHelp)
	cmd.Flag("web.listen-address", "Address of the UI and API.").Default(":8890").StringVar(&c.webAddr)
	cmd.Flag("otlp.grpc.listen-address", "Address of the demo's OTLP/gRPC receiver (your own traces may join).").
		Default("127.0.0.1:0").StringVar(&c.grpcAddr)
	cmd.Flag("metrics.listen-address", "Address of the span-metrics exposition.").Default("127.0.0.1:0").StringVar(&c.metricsAddr)
	cmd.Flag("rate", "Requests per second of the shop traffic.").Default("20").Float64Var(&c.rate)
	cmd.Flag("canary-after", "When the canary starts.").Default("1m").Hidden().SetValue(&c.canaryAfter)
	cmd.Flag("gate-after", "How long the canary serves before the gate runs.").Default("2m").Hidden().SetValue(&c.gateAfter)
	cmd.Flag("window", "The gate's analysis window.").Default("2m").Hidden().SetValue(&c.window)
	cmd.Flag("poll-interval", "The gate's time between looks.").Default("15s").Hidden().SetValue(&c.poll)
	cmd.Flag("max-wait", "The gate's longest wait for enough data.").Default("5m").Hidden().SetValue(&c.maxWait)
	cmd.Flag("flush-interval", "Span-metrics flush interval.").Default("15s").Hidden().SetValue(&c.flush)
	cmd.Flag("exit-after-verdict", "Stop after printing the verdict instead of waiting for Ctrl-C.").Hidden().BoolVar(&c.exitAfter)
	cmd.Flag("log.level", "Log level of the embedded server.").Default("warn").EnumVar(&c.logLevel, "debug", "info", "warn", "error")
	return c
}

func (c *demoCmd) run(ctx context.Context, stdout, stderr io.Writer) (err error) {
	logger, err := newLogger(stderr, c.logLevel, "logfmt")
	if err != nil {
		return usageError{err}
	}
	dir, err := os.MkdirTemp("", "spanwatch-demo-")
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, os.RemoveAll(dir))
		fmt.Fprintf(stderr, "demo: removed %s\n", dir)
	}()
	opts := app.DefaultOptions()
	opts.Config = config.Default()
	opts.Config.SpanMetrics.MetricsFlushInterval = time.Duration(c.flush)
	opts.Config.Gate.Window = time.Duration(c.window)
	opts.Config.Deploy.PollInterval = time.Duration(c.poll)
	opts.Config.Deploy.MaxWait = time.Duration(c.maxWait)
	opts.Config.Deploy.ActivityWindow = 4 * time.Duration(c.flush)
	opts.Storage.Path = dir
	opts.WebAddress, opts.MetricsAddress = c.webAddr, c.metricsAddr
	opts.Ingest.GRPCAddress, opts.Ingest.HTTPAddress = c.grpcAddr, ""
	opts.Logger = logger
	opts.ShutdownTimeout = 5 * time.Second
	a, err := app.New(opts)
	if err != nil {
		return usageError{err}
	}
	if err := a.Start(); err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stderr, "demo: stopping")
		err = errors.Join(err, a.Shutdown(context.Background()))
	}()
	url := "http://" + localURLHost(a.WebAddr())
	fmt.Fprintf(stdout, "spanwatch demo: open %s/ (data in %s, removed on exit; Ctrl-C stops)\n", url, dir)
	fmt.Fprintf(stderr, "demo: OTLP/gRPC receiver at %s (your own traces may join; --otlp.grpc.listen-address=:4317 for the usual port)\n", a.OTLPGRPCAddr())

	sc := loadgen.Shop()
	canary := time.Duration(c.canaryAfter)
	// The built-in timeline starts its deploys at 60s: scale it.
	scale := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * float64(canary) / float64(time.Minute))
	}
	for i := range sc.Services {
		for j := range sc.Services[i].Versions {
			v := &sc.Services[i].Versions[j]
			v.Start, v.Stop, v.Ramp = scale(v.Start), scale(v.Stop), scale(v.Ramp)
		}
	}
	for i := range sc.Changes {
		sc.Changes[i].At = scale(sc.Changes[i].At)
	}
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(a.OTLPGRPCAddr().String()), otlptracegrpc.WithInsecure())
	if err != nil {
		return err
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan error, 1)
	go func() {
		_, err := runLoad(loadCtx, sc, exp, c.rate, 0, 0, stderr, "demo: traffic")
		loadDone <- err
	}()
	defer func() {
		stopLoad()
		err = errors.Join(err, <-loadDone)
	}()

	autoCtx, stopAuto := context.WithCancel(ctx)
	autoDone := make(chan struct{})
	go func() {
		defer close(autoDone)
		printAutomaticVerdicts(autoCtx, url, time.Duration(c.poll), stdout, "payments", "cart")
	}()
	defer func() {
		stopAuto()
		<-autoDone
	}()

	fmt.Fprintf(stderr, "demo: the canary checkout v2 starts in %s; the gate runs %s later\n", model.Duration(canary), c.gateAfter)
	fmt.Fprintf(stderr, "demo: at the same time payments v2 replaces v1 in a rolling update and a canary cart v2 starts; spanwatch judges every deployment itself\n")
	if !sleepOrDone(ctx, canary) {
		return nil
	}
	fmt.Fprintln(stderr, "demo: canary checkout v2 now serves 20 % of checkout's traffic, and its POST /charge database call got slower")
	if !sleepOrDone(ctx, time.Duration(c.gateAfter)) {
		return nil
	}
	fmt.Fprintln(stderr, "demo: running `spanwatch gate` on checkout (v1 baseline, v2 candidate)")
	args := []string{"gate", "--url=" + url, "--service=checkout", `--baseline=service_version="v1"`, `--candidate=service_version="v2"`,
		"--window=" + c.window.String(), "--poll-interval=" + c.poll.String(), "--max-wait=" + c.maxWait.String()}
	if c.gateAfter >= c.window {
		// The window holds canary traffic only: the 80/20 split is checkable.
		args = append(args, "--candidate-share=0.2")
	}
	fmt.Fprintf(stderr, "demo: spanwatch %s\n", shellJoin(args))
	kapp := kingpin.New("spanwatch", "")
	gc := newGateCmd(kapp)
	if _, err := kapp.Parse(args); err != nil {
		return err
	}
	code := gc.run(ctx, stdout, stderr)
	verdict := map[int]string{gatePass: "pass", gateRegression: "regression", gateInconclusive: "inconclusive",
		gateUsage: "usage error", gateBackend: "backend error"}[code]
	fmt.Fprintf(stdout, "spanwatch demo: the gate says %s (exit code %d). The UI stays at %s/ until Ctrl-C.\n", verdict, code, url)
	if c.exitAfter {
		// And the automatic verdicts of the rolling update and the canary.
		select {
		case <-autoDone:
		case <-ctx.Done():
		case <-time.After(time.Duration(c.maxWait) + time.Duration(c.canaryAfter)):
			fmt.Fprintln(stderr, "demo: no automatic verdict for every deployment in time")
		}
		return nil
	}
	<-ctx.Done()
	return nil
}

// sleepOrDone waits d; false if ctx ended first.
func sleepOrDone(ctx context.Context, d time.Duration) bool {
	return gate.Sleep(ctx, d) == nil
}

// localURLHost renders a bound address for a browser: a wildcard host
// becomes localhost.
func localURLHost(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// shellJoin quotes args for display.
func shellJoin(args []string) string {
	s := ""
	for i, a := range args {
		if i > 0 {
			s += " "
		}
		s += "'" + a + "'"
	}
	return s
}

// printAutomaticVerdicts prints each deployment verdict the server reaches,
// once, until those of every service in wait are in or ctx ends.
func printAutomaticVerdicts(ctx context.Context, base string, poll time.Duration, stdout io.Writer, wait ...string) {
	printed := map[string]bool{}
	pending := map[string]bool{}
	for _, s := range wait {
		pending[s] = true
	}
	for len(pending) > 0 {
		if !sleepOrDone(ctx, poll) {
			return
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/deployments", nil)
		if err != nil {
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		var env struct {
			Data []serverDeployment `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&env)
		_ = resp.Body.Close()
		if err != nil {
			continue
		}
		for i := len(env.Data) - 1; i >= 0; i-- { // oldest first
			d := env.Data[i]
			if d.State != "decided" || printed[d.ID] {
				continue
			}
			printed[d.ID] = true
			delete(pending, d.Service)
			reason := d.Reason
			if !strings.HasPrefix(reason, d.Verdict) {
				reason = d.Verdict + ": " + reason
			}
			fmt.Fprintf(stdout, "spanwatch demo: automatic verdict: %s %s (%s, replacing %s): %s\n",
				d.Service, d.Version, d.Shape, d.PreviousVersion, reason)
		}
	}
}
