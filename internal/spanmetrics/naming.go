package spanmetrics

import (
	"slices"
	"strings"
)

// Label is one name/value pair of a rendered series.
type Label struct {
	Name, Value string
}

// SanitizeLabel turns an attribute key into a Prometheus label name the way
// the Collector's Prometheus exporter does: characters outside [a-zA-Z0-9_]
// become '_', a leading digit gets the prefix "key_", a single leading '_'
// gets the prefix "key".
func SanitizeLabel(s string) string {
	if s == "" {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	if s[0] >= '0' && s[0] <= '9' {
		b.WriteString("key_")
	} else if s[0] == '_' && !strings.HasPrefix(s, "__") {
		b.WriteString("key")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// SanitizeName turns a dotted OpenTelemetry name into a Prometheus metric
// name: characters outside [a-zA-Z0-9_:] become '_', a leading digit gets a
// '_' prefix.
func SanitizeName(s string) string {
	var b strings.Builder
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		b.WriteByte('_')
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Names holds the rendered metric and label names of the span metrics for one
// naming configuration. Every sink renders series through the same Names, so
// exposition, storage and remote write agree.
type Names struct {
	// Calls is the counter name, e.g. traces_span_metrics_calls_total.
	Calls string
	// Duration is the histogram base name, e.g.
	// traces_span_metrics_duration_milliseconds; classic series add
	// _bucket, _sum and _count.
	Duration string
	// TargetInfo is the name of the resource-attribute info series.
	TargetInfo string
	// SpanNameLabel is span_name (otel) or operation (legacy).
	SpanNameLabel string
	// Unit is the histogram unit, UnitMilliseconds or UnitSeconds.
	Unit string

	constLabels    []Label
	excludeService bool     // service.name excluded: no service_name label (job stays)
	dimLabels      []string // label names of the aggregator's dimensions, in order
}

func newNames(cfg *Config, nc *NamingConfig, dims []dimSpec) *Names {
	prefix := ""
	if nc.Namespace != "" {
		prefix = nc.Namespace + "_"
	}
	n := &Names{Unit: cfg.Histogram.Unit, TargetInfo: prefix + "target_info"}
	unitSuffix := "milliseconds"
	if cfg.Histogram.Unit == UnitSeconds {
		unitSuffix = "seconds"
	}
	switch nc.Naming {
	case NamingLegacy:
		n.Calls = prefix + "calls_total"
		n.Duration = prefix + "latency"
		n.SpanNameLabel = "operation"
	default:
		base := ""
		if cfg.Namespace != "" {
			base = SanitizeName(cfg.Namespace) + "_"
		}
		n.Calls = prefix + base + "calls_total"
		n.Duration = prefix + base + "duration_" + unitSuffix
		n.SpanNameLabel = "span_name"
	}
	for k, v := range nc.ConstLabels {
		n.constLabels = append(n.constLabels, Label{k, v})
	}
	slices.SortFunc(n.constLabels, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	for _, d := range dims {
		n.dimLabels = append(n.dimLabels, SanitizeLabel(d.name))
	}
	return n
}

// Labels appends the labels of s, sorted by name, to dst. The metric name is
// not included.
func (n *Names) Labels(dst []Label, s *SeriesSnapshot) []Label {
	start := len(dst)
	dst = append(dst, n.constLabels...)
	if s.Overflow {
		dst = append(dst, Label{"otel_metric_overflow", "true"})
		sortLabels(dst[start:])
		return dedupeLabels(dst, start)
	}
	k := decodeKey(s.Key, len(n.dimLabels))
	if job := k.job(); job != "" {
		dst = append(dst, Label{"job", job})
	}
	if k.instance.ok && len(k.instance.v) > 0 {
		dst = append(dst, Label{"instance", k.instance.v})
	}
	add := func(name string, f keyField) {
		if f.ok && f.v != "" {
			dst = append(dst, Label{name, f.v})
		}
	}
	if !n.excludeService {
		add("service_name", k.service)
	}
	add(n.SpanNameLabel, k.spanName)
	if k.kind.ok {
		add("span_kind", keyField{v: SpanKindString(k.kindValue()), ok: true})
	}
	if k.status.ok {
		add("status_code", keyField{v: StatusCodeString(k.statusValue()), ok: true})
	}
	for i, l := range n.dimLabels {
		add(l, k.dims[i])
	}
	sortLabels(dst[start:])
	return dedupeLabels(dst, start)
}

// TargetLabels appends the labels of a target_info series, sorted.
func (n *Names) TargetLabels(dst []Label, t *TargetSnapshot) []Label {
	start := len(dst)
	dst = append(dst, n.constLabels...)
	dst = append(dst, t.Attributes...)
	sortLabels(dst[start:])
	return dedupeLabels(dst, start)
}

// sortLabels sorts ls by name; of labels with the same name the first one
// appended stays (const labels win over series labels) and the rest become
// empty-named entries that compactLabels removes.
func sortLabels(ls []Label) {
	slices.SortStableFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
}

// SpanKindString renders an OTLP span kind as the connector does.
func SpanKindString(k int32) string {
	switch k {
	case 0:
		return "SPAN_KIND_UNSPECIFIED"
	case 1:
		return "SPAN_KIND_INTERNAL"
	case 2:
		return "SPAN_KIND_SERVER"
	case 3:
		return "SPAN_KIND_CLIENT"
	case 4:
		return "SPAN_KIND_PRODUCER"
	case 5:
		return "SPAN_KIND_CONSUMER"
	}
	return ""
}

// StatusCodeString renders an OTLP status code as the connector does.
func StatusCodeString(c int32) string {
	switch c {
	case 0:
		return "STATUS_CODE_UNSET"
	case 1:
		return "STATUS_CODE_OK"
	case 2:
		return "STATUS_CODE_ERROR"
	}
	return ""
}

// dedupeLabels removes, in the sorted tail dst[start:], every label whose name
// equals the previous one's.
func dedupeLabels(dst []Label, start int) []Label {
	out := start
	for i := start; i < len(dst); i++ {
		if i > start && dst[i].Name == dst[out-1].Name {
			continue
		}
		dst[out] = dst[i]
		out++
	}
	return dst[:out]
}

// NewNames returns the names that an aggregator with cfg and nc gives its
// series, for readers of stored span metrics (the gate, the UI).
func NewNames(cfg Config, nc NamingConfig) *Names {
	if nc.Naming == "" {
		nc.Naming = NamingOTel
	}
	if cfg.Histogram.Unit == "" {
		cfg.Histogram.Unit = UnitMilliseconds
	}
	var dims []dimSpec
	for _, d := range cfg.Dimensions {
		dims = append(dims, dimSpec{name: d.Name})
	}
	return newNames(&cfg, &nc, dims)
}
