package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// connectorFlushInterval is the connector's metrics_flush_interval. The
// recipe leaves it at the default (60s); only the fake clock ever reaches it.
const connectorFlushInterval = 60 * time.Second

// recipeConnectorConfig is the `connectors: spanmetrics:` block of the
// recipe's collector.yaml, as the collector's config loader hands it to the
// factory (a string map, durations as strings).
func recipeConnectorConfig() map[string]any {
	buckets := make([]any, len(RecipeBuckets))
	for i, b := range RecipeBuckets {
		buckets[i] = b.String()
	}
	dims := make([]any, len(RecipeDimensions))
	for i, d := range RecipeDimensions {
		m := map[string]any{"name": d.Name}
		if d.Default != "" {
			m["default"] = d.Default
		}
		dims[i] = m
	}
	return map[string]any{
		"histogram": map[string]any{
			"explicit": map[string]any{"buckets": buckets},
		},
		"dimensions":                  dims,
		"aggregation_temporality":     "AGGREGATION_TEMPORALITY_CUMULATIVE",
		"metrics_flush_interval":      connectorFlushInterval.String(),
		"resource_metrics_cache_size": 1000, // the default, spelled out
	}
}

// connectorInstance runs the Collector contrib spanmetrics connector the way a
// collector pipeline does: built by its factory from the recipe's config,
// started, fed through ConsumeTraces after pdata's protobuf decode, with a
// metrics consumer after it that discards what it receives.
//
// The connector exports only from its flush ticker (exportMetrics is
// unexported: buildMetrics, resetState, then the next consumer's
// ConsumeMetrics). The factory takes its clock from the context
// (clockwork.FromContext), which is how the connector's own tests drive the
// ticker (connector_test.go, TestConsumeMetricsErrors: mockClock.Advance then
// wait for the consumer). Export does the same: it advances a fake clock by one
// flush interval and waits until the consumer has been called, so it times
// exactly one real flush through the public component contract, plus one
// goroutine hand-off (a few µs, negligible at thousands of series). The fake
// clock also guarantees that no flush happens during the other benchmarks.
type connectorInstance struct {
	conn    connector.Traces
	clock   *clockwork.FakeClock
	flushed chan int
}

// NewConnector returns a started spanmetrics connector v0.165.0 configured
// like the recipe.
func NewConnector() (Instance, error) {
	f := spanmetricsconnector.NewFactory()
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(recipeConnectorConfig()).Unmarshal(cfg); err != nil {
		return nil, fmt.Errorf("decoding connector config: %w", err)
	}
	if err := confmap.Validate(cfg); err != nil {
		return nil, fmt.Errorf("validating connector config: %w", err)
	}
	c := &connectorInstance{
		clock:   clockwork.NewFakeClock(),
		flushed: make(chan int, 1),
	}
	sink, err := consumer.NewMetrics(func(_ context.Context, md pmetric.Metrics) error {
		c.flushed <- countSeries(md)
		return nil
	})
	if err != nil {
		return nil, err
	}
	ctx := clockwork.AddToContext(context.Background(), c.clock)
	c.conn, err = f.CreateTracesToMetrics(ctx, connectortest.NewNopSettings(f.Type()), cfg, sink)
	if err != nil {
		return nil, fmt.Errorf("creating connector: %w", err)
	}
	if err := c.conn.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		return nil, fmt.Errorf("starting connector: %w", err)
	}
	return c, nil
}

// countSeries counts the data points of the calls metric: one per series. It
// looks at each metric once, not at each data point.
func countSeries(md pmetric.Metrics) int {
	n := 0
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				if m := ms.At(k); m.Type() == pmetric.MetricTypeSum {
					n += m.Sum().DataPoints().Len()
				}
			}
		}
	}
	return n
}

func (c *connectorInstance) Consume(body []byte) (int, error) {
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		return 0, err
	}
	td := req.Traces()
	n := td.SpanCount() // walks resources and scopes only
	if err := c.conn.ConsumeTraces(context.Background(), td); err != nil {
		return 0, err
	}
	return n, nil
}

func (c *connectorInstance) Export() (int, error) {
	c.clock.Advance(connectorFlushInterval)
	select {
	case n := <-c.flushed:
		return n, nil
	case <-time.After(time.Minute):
		return 0, errors.New("connector: no flush within a minute")
	}
}

func (c *connectorInstance) Close() error {
	return c.conn.Shutdown(context.Background())
}
