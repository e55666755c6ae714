// Package spantest runs a real spanwatch server in-process for tests and
// feeds it spans through the OpenTelemetry Go SDK's OTLP exporters, with an
// optional simulated clock. It is imported by tests only.
package spantest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/config"
)

// StartApp runs spanwatch on loopback ports with cfg (nil: defaults) and a
// storage directory of the test's own.
func StartApp(t testing.TB, cfg *config.File, mutate ...func(*app.Options)) *app.App {
	t.Helper()
	opts := app.DefaultOptions()
	if cfg != nil {
		opts.Config = cfg
	}
	opts.Ingest.GRPCAddress = "127.0.0.1:0"
	opts.Ingest.HTTPAddress = "127.0.0.1:0"
	opts.MetricsAddress = "127.0.0.1:0"
	opts.WebAddress = "127.0.0.1:0"
	opts.Storage.Path = t.TempDir()
	for _, m := range mutate {
		m(&opts)
	}
	a, err := app.New(opts)
	require.NoError(t, err)
	require.NoError(t, a.Start())
	t.Cleanup(func() { require.NoError(t, a.Shutdown(context.Background())) })
	return a
}

// Stub describes spans to send.
type Stub struct {
	Service, Name string
	Kind          trace.SpanKind
	Status        codes.Code
	Dur           time.Duration
	Attrs         []attribute.KeyValue
	Res           []attribute.KeyValue
}

// Spans turns stubs into SDK spans that end now-ish.
func Spans(stubs ...Stub) []sdktrace.ReadOnlySpan {
	start := time.Now().Add(-time.Minute)
	var out tracetest.SpanStubs
	for i, s := range stubs {
		attrs := append([]attribute.KeyValue{}, s.Res...)
		if s.Service != "" {
			attrs = append(attrs, semconv.ServiceName(s.Service))
		}
		out = append(out, tracetest.SpanStub{
			Name: s.Name,
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID{1, byte(i >> 8), byte(i)}, SpanID: trace.SpanID{2, byte(i >> 8), byte(i)},
			}),
			SpanKind:   s.Kind,
			StartTime:  start,
			EndTime:    start.Add(s.Dur),
			Attributes: s.Attrs,
			Status:     sdktrace.Status{Code: s.Status},
			Resource:   resource.NewSchemaless(attrs...),
		})
	}
	return out.Snapshots()
}

// Clock is a settable clock for simulated time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the simulated time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add advances the clock.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Simulation is spanwatch with a simulated clock, fed through a real OTLP
// gRPC exporter one flush interval at a time.
type Simulation struct {
	T     testing.TB
	App   *app.App
	Clock *Clock
	Exp   *otlptrace.Exporter
}

// NewSimulation starts spanwatch with its clock at start; mutate changes
// the options after the clock is set.
func NewSimulation(t testing.TB, cfg *config.File, start time.Time, mutate ...func(*app.Options)) *Simulation {
	c := NewClock(start)
	a := StartApp(t, cfg, append([]func(*app.Options){func(o *app.Options) { o.Now = c.Now }}, mutate...)...)
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(a.OTLPGRPCAddr().String()),
		otlptracegrpc.WithInsecure(), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return &Simulation{T: t, App: a, Clock: c, Exp: exp}
}

// Step sends stubs, advances the clock by interval and flushes.
func (s *Simulation) Step(interval time.Duration, stubs []Stub) {
	if len(stubs) > 0 {
		require.NoError(s.T, s.Exp.ExportSpans(context.Background(), Spans(stubs...)))
	}
	s.Clock.Add(interval)
	s.App.Flush()
}
