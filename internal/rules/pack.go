package rules

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/spanwatch/spanwatch/internal/field"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// PackGroup is the name of the built-in pack's rule group.
const PackGroup = "spanwatch_service_performance"

// Alert names of the built-in pack, as in the Jaeger SPM recipe.
const (
	AlertP95Regression  = "ServiceLatencyP95Regression"
	AlertP99Spike       = "ServiceLatencyP99Spike"
	AlertErrorRate      = "ServiceErrorRateIncreased"
	AlertSlowOperation  = "SlowOperationDetected"
	AlertThroughputDrop = "ServiceThroughputDrop"
)

// Span-kind selectors of the pack. The latency alerts look at server spans,
// as the recipe's P95 and P99 rules do; the error-rate and throughput alerts
// look at the spans where work enters a service: server spans (requests)
// and consumer spans (messages). Client spans repeat the callee's failures
// and internal spans mostly surface in the entry span, so counting them
// would alert twice for one fault.
const (
	selServer = `span_kind="SPAN_KIND_SERVER"`
	selEntry  = `span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"`
	selError  = `status_code="STATUS_CODE_ERROR"`
)

// PackConfig is the `rules.builtin` section of the config file: the
// built-in service-performance alerts, each with its threshold, `for`
// duration and labels.
type PackConfig struct {
	// Enabled turns the pack on in `serve` (default true). Pack renders the
	// pack whatever its value.
	Enabled bool `yaml:"enabled"`
	// Interval is the evaluation interval of the pack's group (default 30s,
	// as the recipe).
	Interval time.Duration `yaml:"interval"`
	// RateWindow is the range of every rate() in the pack (default 5m, as
	// the recipe).
	RateWindow time.Duration `yaml:"rate_window"`
	// MinRequestRate is the request rate (per second, over RateWindow) an
	// operation needs before any alert of the pack may fire for it, so idle
	// and near-idle operations stay quiet (default 0.1, 6 per minute).
	// 0 only requires some traffic.
	MinRequestRate float64 `yaml:"min_request_rate"`
	// Labels are added to every alert of the pack; an alert's own Labels
	// win over them.
	Labels map[string]string `yaml:"labels"`
	// GroupBy are labels the pack keeps apart, besides service_name, the
	// span-name label and the exposition's const_labels (which it always
	// keeps), e.g. cluster when several spanwatch instances remote-write to
	// one store with different external labels.
	GroupBy []string `yaml:"group_by"`

	// P95Regression fires when an operation's P95 latency is more than
	// Threshold (a fraction, 0.5 = 50 %) above its value Offset earlier.
	P95Regression ChangeAlert `yaml:"p95_regression"`
	// P99Spike fires when an operation's P99 latency is above ThresholdMS.
	P99Spike LatencyAlert `yaml:"p99_spike"`
	// ErrorRate fires when an operation's share of error spans is above
	// Threshold (a fraction, 0.05 = 5 %).
	ErrorRate RatioAlert `yaml:"error_rate"`
	// SlowOperation fires when an operation's median latency is above
	// ThresholdMS.
	SlowOperation LatencyAlert `yaml:"slow_operation"`
	// ThroughputDrop fires when an operation's request rate is more than
	// Threshold (a fraction, 0.5 = 50 %) below its value Offset earlier.
	ThroughputDrop ChangeAlert `yaml:"throughput_drop"`
}

// AlertConfig holds what every alert of the pack has.
type AlertConfig struct {
	// Enabled keeps the alert in the pack (default true).
	Enabled bool `yaml:"enabled"`
	// For is how long the condition must hold before the alert fires.
	For time.Duration `yaml:"for"`
	// Labels are the alert's labels (default: severity as in the recipe).
	// A label set to "" removes it.
	Labels map[string]string `yaml:"labels"`
}

// LatencyAlert is an alert on a latency quantile above a fixed bound.
type LatencyAlert struct {
	AlertConfig `yaml:",inline"`
	// ThresholdMS is the bound in milliseconds, whatever the histogram unit.
	ThresholdMS float64 `yaml:"threshold_ms"`
}

// RatioAlert is an alert on a ratio above a fixed bound.
type RatioAlert struct {
	AlertConfig `yaml:",inline"`
	// Threshold is a fraction between 0 and 1.
	Threshold float64 `yaml:"threshold"`
}

// ChangeAlert is an alert on a relative change against an earlier window.
type ChangeAlert struct {
	AlertConfig `yaml:",inline"`
	// Threshold is the relative change, a positive fraction (0.5 = 50 %).
	Threshold float64 `yaml:"threshold"`
	// Offset is how far back the earlier window lies.
	Offset time.Duration `yaml:"offset"`
}

// DefaultPackConfig returns the recipe's thresholds and durations with the
// guards on.
func DefaultPackConfig() PackConfig {
	alert := func(d time.Duration, severity string) AlertConfig {
		return AlertConfig{Enabled: true, For: d, Labels: map[string]string{"severity": severity}}
	}
	return PackConfig{
		Enabled:        true,
		Interval:       30 * time.Second,
		RateWindow:     5 * time.Minute,
		MinRequestRate: 0.1,
		P95Regression:  ChangeAlert{AlertConfig: alert(10*time.Minute, "warning"), Threshold: 0.5, Offset: time.Hour},
		P99Spike:       LatencyAlert{AlertConfig: alert(5*time.Minute, "critical"), ThresholdMS: 5000},
		ErrorRate:      RatioAlert{AlertConfig: alert(5*time.Minute, "critical"), Threshold: 0.05},
		SlowOperation:  LatencyAlert{AlertConfig: alert(15*time.Minute, "warning"), ThresholdMS: 1000},
		ThroughputDrop: ChangeAlert{AlertConfig: alert(5*time.Minute, "warning"), Threshold: 0.5, Offset: 10 * time.Minute},
	}
}

// Validate checks the section; the error is a *field.Error that
// names the key.
func (c *PackConfig) Validate() error {
	switch {
	case c.Interval < time.Second:
		return fieldErr("interval", "interval must be at least 1s, got %s", c.Interval)
	case c.RateWindow < time.Second:
		return fieldErr("rate_window", "rate_window must be at least 1s, got %s", c.RateWindow)
	case !finite(c.MinRequestRate) || c.MinRequestRate < 0:
		return fieldErr("min_request_rate", "min_request_rate must be a rate per second ≥ 0, got %g", c.MinRequestRate)
	}
	if err := validateLabels("labels", c.Labels); err != nil {
		return err
	}
	for i, l := range c.GroupBy {
		key := fmt.Sprintf("group_by[%d]", i)
		switch {
		case !model.LegacyValidation.IsValidLabelName(l) || strings.HasPrefix(l, "__"):
			return fieldErr(key, "%q is not a valid label name", l)
		case l == "le" || l == "status_code":
			return fieldErr(key, "the pack cannot group by %s: its quantiles and error rates aggregate over it", l)
		}
	}
	alerts := []struct {
		key string
		a   *AlertConfig
	}{
		{"p95_regression", &c.P95Regression.AlertConfig},
		{"p99_spike", &c.P99Spike.AlertConfig},
		{"error_rate", &c.ErrorRate.AlertConfig},
		{"slow_operation", &c.SlowOperation.AlertConfig},
		{"throughput_drop", &c.ThroughputDrop.AlertConfig},
	}
	for _, a := range alerts {
		if a.a.For < 0 {
			return fieldErr(a.key+".for", "for must not be negative, got %s", a.a.For)
		}
		if err := validateLabels(a.key+".labels", a.a.Labels); err != nil {
			return err
		}
	}
	for _, ch := range []struct {
		key string
		a   *ChangeAlert
		max float64
	}{
		{"p95_regression", &c.P95Regression, math.Inf(1)},
		{"throughput_drop", &c.ThroughputDrop, 1},
	} {
		if !finite(ch.a.Threshold) || ch.a.Threshold <= 0 || ch.a.Threshold >= ch.max {
			if ch.max == 1 {
				return fieldErr(ch.key+".threshold", "threshold must be a fraction in (0, 1), got %g", ch.a.Threshold)
			}
			return fieldErr(ch.key+".threshold", "threshold must be a positive fraction (0.5 = 50 %%), got %g", ch.a.Threshold)
		}
		if ch.a.Offset < c.RateWindow {
			return fieldErr(ch.key+".offset", "offset must be at least rate_window (%s) so that the two windows do not overlap, got %s", c.RateWindow, ch.a.Offset)
		}
	}
	for _, l := range []struct {
		key string
		a   *LatencyAlert
	}{{"p99_spike", &c.P99Spike}, {"slow_operation", &c.SlowOperation}} {
		if !finite(l.a.ThresholdMS) || l.a.ThresholdMS <= 0 {
			return fieldErr(l.key+".threshold_ms", "threshold_ms must be positive, got %g", l.a.ThresholdMS)
		}
	}
	if t := c.ErrorRate.Threshold; !finite(t) || t <= 0 || t >= 1 {
		return fieldErr("error_rate.threshold", "threshold must be a fraction in (0, 1), got %g", t)
	}
	return nil
}

func validateLabels(key string, ls map[string]string) error {
	for name, v := range ls {
		switch {
		case !model.LegacyValidation.IsValidLabelName(name):
			return fieldErr(key+"."+name, "%q is not a valid label name", name)
		case strings.HasPrefix(name, "__"):
			return fieldErr(key+"."+name, "label names starting with __ are reserved")
		case name == model.AlertNameLabel:
			return fieldErr(key+"."+name, "alertname is the alert's name and cannot be set")
		case !utf8.ValidString(v):
			return fieldErr(key+"."+name, "label value is not valid UTF-8")
		}
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func fieldErr(key, format string, args ...any) error {
	return &field.Error{Path: key, Err: fmt.Errorf(format, args...)}
}

// Pack renders the built-in pack as a Prometheus rule file (groups → rules)
// for the span metrics named by n. It validates c first; c.Enabled is not
// consulted. Alerts whose Enabled is false are left out.
func Pack(n *spanmetrics.Names, c PackConfig) ([]byte, error) {
	if n == nil || n.Calls == "" || n.Duration == "" || n.SpanNameLabel == "" {
		return nil, errors.New("rule pack: metric names are not set")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b := newBuilder(n, &c)
	var rules []rule
	for _, r := range []struct {
		on    bool
		build func() rule
	}{
		{c.P95Regression.Enabled, b.p95Regression},
		{c.P99Spike.Enabled, b.p99Spike},
		{c.ErrorRate.Enabled, b.errorRate},
		{c.SlowOperation.Enabled, b.slowOperation},
		{c.ThroughputDrop.Enabled, b.throughputDrop},
	} {
		if r.on {
			rules = append(rules, r.build())
		}
	}
	f := ruleFile{Groups: []group{{Name: PackGroup, Interval: dur(c.Interval), Rules: rules}}}

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# spanwatch built-in alert pack, from the rules.builtin section of the config file.\n")
	fmt.Fprintf(&buf, "# Series: %s, %s_bucket (unit %s); span name label: %s.\n", n.Calls, n.Duration, b.unit, n.SpanNameLabel)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("rule pack: encoding YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("rule pack: encoding YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// ruleFile is the YAML shape of a Prometheus rule file.
type ruleFile struct {
	Groups []group `yaml:"groups"`
}

type group struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []rule `yaml:"rules"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]quoted `yaml:"labels,omitempty"`
	Annotations map[string]quoted `yaml:"annotations,omitempty"`
}

// quoted is a string written double-quoted, as rule files usually write
// templates.
type quoted string

// MarshalYAML implements yaml.Marshaler.
func (q quoted) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: string(q)}, nil
}

// builder renders the expressions of one pack.
type builder struct {
	n      *spanmetrics.Names
	c      *PackConfig
	by     string // the grouping labels: service, span name, const labels, group_by
	window string
	unit   string  // "ms" or "s"
	perMS  float64 // milliseconds per histogram unit
	vfmt   string  // printf format of a latency $value
}

func newBuilder(n *spanmetrics.Names, c *PackConfig) *builder {
	keep := []string{"service_name", n.SpanNameLabel}
	for _, l := range n.TargetLabels(nil, &spanmetrics.TargetSnapshot{}) { // the const labels
		if !slices.Contains(keep, l.Name) {
			keep = append(keep, l.Name)
		}
	}
	for _, l := range c.GroupBy {
		if !slices.Contains(keep, l) {
			keep = append(keep, l)
		}
	}
	b := &builder{
		n: n, c: c,
		by:     strings.Join(keep, ", "),
		window: dur(c.RateWindow),
		unit:   spanmetrics.UnitMilliseconds, perMS: 1, vfmt: "%.0f",
	}
	if n.Unit == spanmetrics.UnitSeconds {
		b.unit, b.perMS, b.vfmt = spanmetrics.UnitSeconds, 1000, "%.3f"
	}
	return b
}

// rate is the per-operation request rate of the calls matching sel.
func (b *builder) rate(sel string, offset time.Duration) string {
	return fmt.Sprintf("sum by (%s) (rate(%s{%s}[%s]%s))", b.by, b.n.Calls, sel, b.window, offsetOf(offset))
}

// quantile is the per-operation latency quantile of server spans.
func (b *builder) quantile(q float64, offset time.Duration) string {
	return fmt.Sprintf("histogram_quantile(%s, sum by (%s, le) (rate(%s_bucket{%s}[%s]%s)))",
		num(q), b.by, b.n.Duration, selServer, b.window, offsetOf(offset))
}

// busy is the comparison that keeps operations with enough traffic.
func (b *builder) busy() string {
	if b.c.MinRequestRate > 0 {
		return ">= " + num(b.c.MinRequestRate)
	}
	return "> 0"
}

// busyGuard keeps, of the expression before it, the operations whose server
// spans have enough traffic offset earlier.
func (b *builder) busyGuard(offset time.Duration) string {
	return fmt.Sprintf("and on (%s)\n  %s %s", b.by, b.rate(selServer, offset), b.busy())
}

func (b *builder) op() string { return "{{ $labels." + b.n.SpanNameLabel + " }}" }

func (b *builder) latency() string {
	return fmt.Sprintf(`{{ printf "%s" $value }} %s`, b.vfmt, b.unit)
}

func (b *builder) p95Regression() rule {
	a := &b.c.P95Regression
	expr := fmt.Sprintf("(\n  %s\n  /\n  (%s > 0)\n  - 1\n) > %s\n%s\n%s",
		b.quantile(0.95, 0), b.quantile(0.95, a.Offset), num(a.Threshold),
		b.busyGuard(0), b.busyGuard(a.Offset))
	return b.rule(AlertP95Regression, expr, &a.AlertConfig, map[string]string{
		"summary": "Service {{ $labels.service_name }} P95 latency increased by {{ $value | humanizePercentage }}",
		"description": fmt.Sprintf("P95 latency of %s/%s is {{ $value | humanizePercentage }} above its value %s ago (threshold %s).",
			"{{ $labels.service_name }}", b.op(), dur(a.Offset), pct(a.Threshold)),
	})
}

func (b *builder) p99Spike() rule {
	a := &b.c.P99Spike
	th := a.ThresholdMS / b.perMS
	expr := fmt.Sprintf("%s > %s\n%s", b.quantile(0.99, 0), num(th), b.busyGuard(0))
	return b.rule(AlertP99Spike, expr, &a.AlertConfig, map[string]string{
		"summary": "Service {{ $labels.service_name }} P99 latency spike",
		"description": fmt.Sprintf("P99 latency of %s/%s is %s (threshold %s %s).",
			"{{ $labels.service_name }}", b.op(), b.latency(), num(th), b.unit),
	})
}

func (b *builder) errorRate() rule {
	a := &b.c.ErrorRate
	expr := fmt.Sprintf("(\n  %s\n  /\n  (%s %s)\n) > %s",
		b.rate(selEntry+", "+selError, 0), b.rate(selEntry, 0), b.busy(), num(a.Threshold))
	return b.rule(AlertErrorRate, expr, &a.AlertConfig, map[string]string{
		"summary": fmt.Sprintf("Service {{ $labels.service_name }} error rate above %s", pct(a.Threshold)),
		"description": fmt.Sprintf("Error rate of %s/%s is {{ $value | humanizePercentage }}.",
			"{{ $labels.service_name }}", b.op()),
	})
}

func (b *builder) slowOperation() rule {
	a := &b.c.SlowOperation
	th := a.ThresholdMS / b.perMS
	expr := fmt.Sprintf("%s > %s\n%s", b.quantile(0.5, 0), num(th), b.busyGuard(0))
	return b.rule(AlertSlowOperation, expr, &a.AlertConfig, map[string]string{
		"summary": fmt.Sprintf("Slow operation detected: %s/%s", "{{ $labels.service_name }}", b.op()),
		"description": fmt.Sprintf("Median latency of %s/%s is %s (threshold %s %s for %s).",
			"{{ $labels.service_name }}", b.op(), b.latency(), num(th), b.unit, dur(a.For)),
	})
}

func (b *builder) throughputDrop() rule {
	a := &b.c.ThroughputDrop
	earlier := b.rate(selEntry, a.Offset)
	// An operation whose series have gone stale has no current rate; "or"
	// counts it as 0 so that traffic stopping altogether fires too.
	expr := fmt.Sprintf("(\n  1 - (\n    %s\n    or\n    0 * %s\n  )\n  /\n  (%s %s)\n) > %s",
		b.rate(selEntry, 0), earlier, earlier, b.busy(), num(a.Threshold))
	return b.rule(AlertThroughputDrop, expr, &a.AlertConfig, map[string]string{
		"summary": "Service {{ $labels.service_name }} throughput dropped by {{ $value | humanizePercentage }}",
		"description": fmt.Sprintf("Request rate of %s/%s is {{ $value | humanizePercentage }} lower than %s ago (threshold %s).",
			"{{ $labels.service_name }}", b.op(), dur(a.Offset), pct(a.Threshold)),
	})
}

// rule assembles one alerting rule; pack labels are overridden by the
// alert's own, and empty values are dropped.
func (b *builder) rule(name, expr string, a *AlertConfig, annotations map[string]string) rule {
	r := rule{Alert: name, Expr: expr, For: dur(a.For)}
	if a.For == 0 {
		r.For = ""
	}
	for _, ls := range []map[string]string{b.c.Labels, a.Labels} {
		for k, v := range ls {
			if r.Labels == nil {
				r.Labels = map[string]quoted{}
			}
			r.Labels[k] = quoted(v)
		}
	}
	for k, v := range r.Labels {
		if v == "" {
			delete(r.Labels, k)
		}
	}
	r.Annotations = map[string]quoted{}
	for k, v := range annotations {
		r.Annotations[k] = quoted(v)
	}
	return r
}

func offsetOf(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return " offset " + dur(d)
}

// dur writes d as a Prometheus duration (1h, 10m, 1m30s).
func dur(d time.Duration) string { return model.Duration(d).String() }

// num writes f as a PromQL number.
func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// pct writes a fraction as a percentage for annotations.
func pct(f float64) string { return num(math.Round(f*1e6)/1e4) + "%" }
