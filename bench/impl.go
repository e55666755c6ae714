package bench

import "time"

// Instance is one running span-metrics aggregator under test.
type Instance interface {
	// Consume decodes one serialized ExportTraceServiceRequest and aggregates
	// its spans. It returns the number of spans accepted. It is safe for
	// concurrent use.
	Consume(body []byte) (int, error)
	// Export produces what the implementation hands its sinks once per flush
	// interval and returns the number of series in it.
	Export() (int, error)
	// Close releases the instance (stops goroutines).
	Close() error
}

// Impl is an implementation under test.
type Impl struct {
	// Name is the value of the impl= key in benchmark names.
	Name string
	// New returns a fresh instance configured like the recipe.
	New func() (Instance, error)
}

// The implementations compared.
var (
	// Spanwatch is spanwatch with its defaults: classic buckets and native
	// histograms.
	Spanwatch = Impl{Name: "spanwatch", New: NewSpanwatch}
	// SpanwatchClassic is spanwatch with classic buckets only.
	SpanwatchClassic = Impl{Name: "spanwatch-classic", New: NewSpanwatchClassic}
	// Connector is the Collector's spanmetrics connector (classic buckets,
	// as the recipe configures it).
	Connector = Impl{Name: "connector", New: NewConnector}
)

// Impls are the implementations compared, spanwatch first.
var Impls = []Impl{Spanwatch, SpanwatchClassic, Connector}

// The recipe's connector settings (/work/shared/recipe/collector.yaml), which
// both implementations are configured with.
var (
	// RecipeBuckets are the explicit histogram bounds.
	RecipeBuckets = []time.Duration{
		2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
		50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
	}
	// RecipeDimensions are the extra dimensions; only http.method has a default.
	RecipeDimensions = []struct {
		Name    string
		Default string // "" means none
	}{
		{"http.method", "GET"},
		{"http.status_code", ""},
		{"k8s.deployment.name", ""},
		{"k8s.namespace", ""},
	}
)
