package spanmetrics

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spanwatch/spanwatch/internal/field"
)

// Naming schemes for the exposed series.
const (
	// NamingOTel names series like the OpenTelemetry Collector's spanmetrics
	// connector behind the Prometheus exporter: traces_span_metrics_calls_total,
	// traces_span_metrics_duration_milliseconds_*, label span_name.
	NamingOTel = "otel"
	// NamingLegacy names series like the older spanmetrics processor:
	// calls_total, latency_*, label operation.
	NamingLegacy = "legacy"
)

// Histogram units.
const (
	UnitMilliseconds = "ms"
	UnitSeconds      = "s"
)

// Built-in dimension names, as in the connector's exclude_dimensions.
const (
	DimServiceName    = "service.name"
	DimSpanName       = "span.name"
	DimSpanKind       = "span.kind"
	DimStatusCode     = "status.code"
	DimServiceVersion = "service.version"
)

// Resource attributes that identify where spans came from.
const (
	AttrServiceName       = "service.name"
	AttrServiceNamespace  = "service.namespace"
	AttrServiceInstanceID = "service.instance.id"
	AttrServiceVersion    = "service.version"
)

// UnknownService is the service name used for resources without service.name,
// as the OpenTelemetry SDKs do.
const UnknownService = "unknown_service"

// DefaultBuckets are the connector's default explicit bucket bounds.
var DefaultBuckets = []time.Duration{
	2 * time.Millisecond, 4 * time.Millisecond, 6 * time.Millisecond, 8 * time.Millisecond,
	10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	400 * time.Millisecond, 800 * time.Millisecond, 1 * time.Second, 1400 * time.Millisecond,
	2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second,
}

// Config is the `spanmetrics:` section. Its keys mirror the OpenTelemetry
// Collector spanmetrics connector so that a connector block can be pasted in.
type Config struct {
	// Histogram configures the duration histogram.
	Histogram HistogramConfig `yaml:"histogram"`
	// Dimensions are extra labels, looked up in span attributes, then
	// resource attributes, then Default.
	Dimensions []Dimension `yaml:"dimensions"`
	// ExcludeDimensions removes built-in dimensions (service.name, span.name,
	// span.kind, status.code, service.version) from the series identity.
	ExcludeDimensions []string `yaml:"exclude_dimensions"`
	// Namespace prefixes metric names in the otel naming
	// (default "traces.span.metrics").
	Namespace string `yaml:"namespace"`
	// AggregationCardinalityLimit bounds the number of series; past it
	// observations go to one overflow series. 0 means unlimited.
	AggregationCardinalityLimit int `yaml:"aggregation_cardinality_limit"`
	// SeriesExpiration removes series that received no span for this long.
	// 0 keeps series forever.
	SeriesExpiration time.Duration `yaml:"series_expiration"`
	// MetricsExpiration is the connector's name for SeriesExpiration.
	MetricsExpiration time.Duration `yaml:"metrics_expiration"`
	// MetricsFlushInterval is how often a snapshot is taken and handed to
	// every sink.
	MetricsFlushInterval time.Duration `yaml:"metrics_flush_interval"`
	// AggregationTemporality must be cumulative (Prometheus counters are).
	AggregationTemporality string `yaml:"aggregation_temporality"`

	// Connector keys accepted for compatibility; they have no effect.
	DimensionsCacheSize      int             `yaml:"dimensions_cache_size"`
	ResourceMetricsCacheSize int             `yaml:"resource_metrics_cache_size"`
	Exemplars                ExemplarsConfig `yaml:"exemplars"`
}

// ExemplarsConfig is accepted for compatibility with the connector.
type ExemplarsConfig struct {
	Enabled         bool `yaml:"enabled"`
	MaxPerDataPoint int  `yaml:"max_per_data_point"`
}

// HistogramConfig configures the duration histogram of every series.
type HistogramConfig struct {
	// Disable drops the duration histogram; only calls are kept.
	Disable bool `yaml:"disable"`
	// Unit is ms (default) or s.
	Unit string `yaml:"unit"`
	// Explicit holds the classic bucket bounds.
	Explicit ExplicitConfig `yaml:"explicit"`
	// Exponential configures the native (exponential) histogram that every
	// duration series keeps beside the classic buckets, unless disabled.
	Exponential ExponentialConfig `yaml:"exponential"`
}

// ExplicitConfig holds classic histogram bucket bounds.
type ExplicitConfig struct {
	// Buckets are the upper bounds, strictly increasing; +Inf is implied.
	Buckets []time.Duration `yaml:"buckets"`
}

// ExponentialConfig configures native histograms.
type ExponentialConfig struct {
	// Enabled keeps a native histogram beside the classic buckets of every
	// duration series (default true). Both are exposed, stored and
	// remote-written, so queries over the classic buckets keep working.
	Enabled bool `yaml:"enabled"`
	// MaxSize is the largest number of populated buckets per series; past it
	// the resolution is halved (default 160).
	MaxSize int `yaml:"max_size"`
	// Schema is the starting resolution: bucket bounds grow by 2^(2^-schema)
	// (default 3, about 9 %). Between -4 and 8.
	Schema *int `yaml:"schema"`
}

// Dimension is an extra label taken from span or resource attributes.
type Dimension struct {
	// Name is the attribute key; the label is its sanitised form.
	Name string `yaml:"name"`
	// Default is used when neither span nor resource has the attribute.
	// Without it the label is omitted.
	Default *string `yaml:"default"`
}

// NamingConfig is the `exposition:` section: how series are named wherever
// they leave spanwatch (exposition, storage, remote write).
type NamingConfig struct {
	// Namespace prefixes every metric name (e.g. jaeger_spm).
	Namespace string `yaml:"namespace"`
	// ConstLabels are added to every series.
	ConstLabels map[string]string `yaml:"const_labels"`
	// Naming is otel (default) or legacy.
	Naming string `yaml:"naming"`
}

// DefaultConfig returns the defaults used when the file says nothing.
func DefaultConfig() Config {
	return Config{
		Histogram: HistogramConfig{
			Unit:        UnitMilliseconds,
			Explicit:    ExplicitConfig{Buckets: slices.Clone(DefaultBuckets)},
			Exponential: DefaultExponentialConfig(),
		},
		Namespace:                   "traces.span.metrics",
		AggregationCardinalityLimit: 100000,
		SeriesExpiration:            15 * time.Minute,
		MetricsFlushInterval:        15 * time.Second,
		AggregationTemporality:      "CUMULATIVE",
	}
}

// DefaultNamingConfig returns the default exposition naming.
func DefaultNamingConfig() NamingConfig {
	return NamingConfig{Naming: NamingOTel}
}

// DefaultExponentialConfig returns the native-histogram defaults: enabled,
// schema 3, at most 160 buckets.
func DefaultExponentialConfig() ExponentialConfig {
	s := 3
	return ExponentialConfig{Enabled: true, MaxSize: 160, Schema: &s}
}

func fieldErr(path string, format string, args ...any) error {
	return field.Errorf(path, format, args...)
}

var builtinDims = []string{DimServiceName, DimSpanName, DimSpanKind, DimStatusCode, DimServiceVersion}

// Validate checks the section and returns the first problem as a *field.Error.
func (c *Config) Validate() error {
	switch c.Histogram.Unit {
	case UnitMilliseconds, UnitSeconds:
	default:
		return fieldErr("histogram.unit", "unit must be %q or %q, got %q", UnitMilliseconds, UnitSeconds, c.Histogram.Unit)
	}
	b := c.Histogram.Explicit.Buckets
	for i, d := range b {
		if d <= 0 {
			return fieldErr(fmt.Sprintf("histogram.explicit.buckets[%d]", i), "bucket bound must be positive, got %s", d)
		}
		if d < time.Microsecond {
			return fieldErr(fmt.Sprintf("histogram.explicit.buckets[%d]", i), "bucket bound %s is below 1µs; write a unit, e.g. %dms", d, int64(d))
		}
		if i > 0 && d <= b[i-1] {
			return fieldErr(fmt.Sprintf("histogram.explicit.buckets[%d]", i), "buckets must be strictly increasing: %s follows %s", d, b[i-1])
		}
	}
	if len(b) > 1000 {
		return fieldErr("histogram.explicit.buckets", "at most 1000 buckets, got %d", len(b))
	}
	// Checked even when disabled, so that enabling it later cannot fail.
	if e := &c.Histogram.Exponential; e.MaxSize < 0 || (e.MaxSize > 0 && e.MaxSize < 4) || e.MaxSize > 10000 {
		return fieldErr("histogram.exponential.max_size", "max_size must be between 4 and 10000, got %d", e.MaxSize)
	}
	if s := c.Histogram.Exponential.Schema; s != nil && (*s < -4 || *s > 8) {
		return fieldErr("histogram.exponential.schema", "schema must be between -4 and 8, got %d", *s)
	}
	seen := map[string]string{}
	for _, d := range builtinDims {
		seen[SanitizeLabel(d)] = d
	}
	for i, d := range c.Dimensions {
		p := fmt.Sprintf("dimensions[%d].name", i)
		if d.Name == "" {
			return fieldErr(p, "dimension name must not be empty")
		}
		if slices.Contains(builtinDims, d.Name) {
			return fieldErr(p, "%q is a built-in dimension", d.Name)
		}
		l := SanitizeLabel(d.Name)
		if prev, ok := seen[l]; ok {
			return fieldErr(p, "dimension %q gives label %q, as %q does", d.Name, l, prev)
		}
		seen[l] = d.Name
	}
	if len(c.Dimensions) > maxDims {
		return fieldErr("dimensions", "at most %d dimensions, got %d", maxDims, len(c.Dimensions))
	}
	for i, d := range c.ExcludeDimensions {
		if !slices.Contains(builtinDims, d) {
			return fieldErr(fmt.Sprintf("exclude_dimensions[%d]", i), "%q is not a built-in dimension (one of %s)", d, strings.Join(builtinDims, ", "))
		}
	}
	if c.AggregationCardinalityLimit < 0 {
		return fieldErr("aggregation_cardinality_limit", "must not be negative")
	}
	if c.SeriesExpiration < 0 {
		return fieldErr("series_expiration", "must not be negative")
	}
	if c.MetricsExpiration < 0 {
		return fieldErr("metrics_expiration", "must not be negative")
	}
	if c.MetricsExpiration != 0 && c.SeriesExpiration != 0 && c.MetricsExpiration != c.SeriesExpiration {
		return fieldErr("metrics_expiration", "set series_expiration or metrics_expiration, not both")
	}
	if c.MetricsFlushInterval < 100*time.Millisecond {
		return fieldErr("metrics_flush_interval", "must be at least 100ms, got %s", c.MetricsFlushInterval)
	}
	switch strings.ToUpper(c.AggregationTemporality) {
	case "", "CUMULATIVE", "AGGREGATION_TEMPORALITY_CUMULATIVE":
	default:
		return fieldErr("aggregation_temporality", "only CUMULATIVE is supported (Prometheus counters are cumulative), got %q", c.AggregationTemporality)
	}
	return nil
}

// Expiration returns the effective idle-series expiry.
func (c *Config) Expiration() time.Duration {
	if c.MetricsExpiration != 0 {
		return c.MetricsExpiration
	}
	return c.SeriesExpiration
}

// Validate checks the naming section.
func (c *NamingConfig) Validate() error {
	switch c.Naming {
	case NamingOTel, NamingLegacy:
	default:
		return fieldErr("naming", "naming must be %q or %q, got %q", NamingOTel, NamingLegacy, c.Naming)
	}
	if c.Namespace != "" && SanitizeName(c.Namespace) != c.Namespace {
		return fieldErr("namespace", "namespace %q is not a valid metric name prefix (try %q)", c.Namespace, SanitizeName(c.Namespace))
	}
	for k := range c.ConstLabels {
		if k == "" || SanitizeLabel(k) != k || strings.HasPrefix(k, "__") {
			return fieldErr("const_labels."+k, "%q is not a valid label name", k)
		}
	}
	return nil
}

// ErrInvalidRequest marks a request that could not be decoded.
var ErrInvalidRequest = errors.New("invalid OTLP trace request")
