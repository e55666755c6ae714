package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"

	"github.com/spanwatch/spanwatch/internal/loadgen"
)

const loadgenHelp = `Generate synthetic traces from a scenario and send them over OTLP/gRPC.

Like the Collector's telemetrygen, but with services, versions and traffic shares, latency distributions,
error rates, downstream and database calls, and changes injected at a point in time (a canary that gets
slower). Without --scenario it plays the built-in shop of ` + "`spanwatch demo`" + `. See docs/loadgen.md.`

type loadgenCmd struct {
	endpoint  string
	scenario  string
	rate      float64
	duration  model.Duration
	insecure  bool
	headers   map[string]string
	printShop bool
	seed      uint64
}

func newLoadgenCmd(a *kingpin.Application) *loadgenCmd {
	c := &loadgenCmd{}
	cmd := a.Command("loadgen", loadgenHelp)
	cmd.Flag("otlp-endpoint", "OTLP/gRPC endpoint to send spans to: host:port, or a URL (http:// is plaintext).").Default("localhost:4317").StringVar(&c.endpoint)
	cmd.Flag("scenario", "Scenario file (YAML). Default: the built-in shop scenario.").PlaceHolder("<path>").StringVar(&c.scenario)
	cmd.Flag("rate", "Requests (traces) per second; overrides the scenario's rate.").Float64Var(&c.rate)
	cmd.Flag("duration", "How long to send; 0 runs until interrupted.").Default("0s").SetValue(&c.duration)
	cmd.Flag("insecure", "Use plaintext gRPC instead of TLS.").BoolVar(&c.insecure)
	cmd.Flag("otlp-header", "Header sent with every export, e.g. authorization=Bearer… (repeatable).").PlaceHolder("<name>=<value>").StringMapVar(&c.headers)
	cmd.Flag("print-scenario", "Print the built-in shop scenario and exit.").BoolVar(&c.printShop)
	cmd.Flag("seed", "Random seed, for reproducible traffic; 0 picks one.").Hidden().Uint64Var(&c.seed)
	return c
}

func (c *loadgenCmd) run(ctx context.Context, stdout, stderr io.Writer) error {
	if c.printShop {
		_, err := stdout.Write(loadgen.ShopYAML())
		return err
	}
	sc := loadgen.Shop()
	if c.scenario != "" {
		var err error
		if sc, err = loadgen.Load(c.scenario); err != nil {
			return usageError{err}
		}
	}
	if c.rate < 0 {
		return usageError{errors.New("--rate must not be negative")}
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(c.endpoint), otlptracegrpc.WithHeaders(c.headers)}
	if strings.Contains(c.endpoint, "://") {
		// http://host:4317 is plaintext, https:// is TLS.
		opts[0] = otlptracegrpc.WithEndpointURL(c.endpoint)
	}
	if c.insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return usageError{fmt.Errorf("--otlp-endpoint: %w", err)}
	}
	stats, err := runLoad(ctx, sc, exp, c.rate, time.Duration(c.duration), c.seed, stderr, "loadgen")
	fmt.Fprintf(stdout, "sent %d requests (%d spans, %d failed requests); %d exports failed\n",
		stats.Requests, stats.Spans, stats.Errors, stats.ExportErrors)
	return err
}

// runLoad plays sc through exp until duration or ctx ends, reporting
// progress every 15 s, then shuts the exporter down.
func runLoad(ctx context.Context, sc *loadgen.Scenario, exp *otlptrace.Exporter, rate float64, duration time.Duration,
	seed uint64, progress io.Writer, prefix string) (loadgen.Stats, error) {
	g, err := loadgen.New(loadgen.Options{Scenario: sc, Exporter: exp, Rate: rate, Duration: duration, Seed: seed})
	if err != nil {
		_ = exp.Shutdown(context.Background())
		return loadgen.Stats{}, usageError{err}
	}
	fmt.Fprintf(progress, "%s: sending %.0f requests/s across %d services\n", prefix, g.Rate(), len(sc.Services))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				s := g.Stats()
				fmt.Fprintf(progress, "%s: %d requests, %d spans sent; %d exports failed\n", prefix, s.Requests, s.Spans, s.ExportErrors)
			}
		}
	}()
	err = g.Run(runCtx)
	cancel()
	<-done
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	return g.Stats(), errors.Join(err, exp.Shutdown(sctx))
}
