package bench

import (
	"fmt"
	"time"

	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// spanwatchInstance is spanwatch's aggregator, fed the serialized request
// directly (no pdata).
type spanwatchInstance struct {
	agg *spanmetrics.Aggregator
}

// SpanwatchConfig returns spanwatch's defaults with the recipe's connector
// block applied. Two settings are changed to match what the connector does
// with the same block:
//   - service.version is excluded: spanwatch adds it as a dimension by
//     default, the connector does not;
//   - the cardinality limit is off (the connector's default is 0, unlimited),
//     so that the 100k-series memory run does not overflow.
//
// Everything else stays at spanwatch's defaults, including series expiry
// (15 min), which the connector does not do by default: it costs spanwatch a
// timestamp per series and a check per snapshot.
func SpanwatchConfig() spanmetrics.Config {
	cfg := spanmetrics.DefaultConfig()
	cfg.Histogram.Explicit.Buckets = append([]time.Duration(nil), RecipeBuckets...)
	cfg.Dimensions = nil
	for _, d := range RecipeDimensions {
		dim := spanmetrics.Dimension{Name: d.Name}
		if d.Default != "" {
			dim.Default = new(d.Default)
		}
		cfg.Dimensions = append(cfg.Dimensions, dim)
	}
	cfg.ExcludeDimensions = []string{spanmetrics.DimServiceVersion}
	cfg.AggregationTemporality = "CUMULATIVE"
	cfg.AggregationCardinalityLimit = 0
	return cfg
}

// NewSpanwatch returns spanwatch's aggregator configured like the recipe,
// with its default native histograms beside the classic buckets.
func NewSpanwatch() (Instance, error) { return newSpanwatch(SpanwatchConfig()) }

// NewSpanwatchClassic returns spanwatch's aggregator configured like the
// recipe, with classic buckets only (histogram.exponential.enabled: false).
func NewSpanwatchClassic() (Instance, error) {
	cfg := SpanwatchConfig()
	cfg.Histogram.Exponential.Enabled = false
	return newSpanwatch(cfg)
}

func newSpanwatch(cfg spanmetrics.Config) (Instance, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validating spanwatch config: %w", err)
	}
	agg, err := spanmetrics.New(cfg, spanmetrics.Options{})
	if err != nil {
		return nil, fmt.Errorf("creating spanwatch aggregator: %w", err)
	}
	return &spanwatchInstance{agg: agg}, nil
}

func (s *spanwatchInstance) Consume(body []byte) (int, error) { return s.agg.ConsumeProto(body) }

func (s *spanwatchInstance) Export() (int, error) {
	return len(s.agg.Snapshot(time.Now()).Series), nil
}

func (s *spanwatchInstance) Close() error { return nil }
