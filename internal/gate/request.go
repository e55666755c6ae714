package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/spanwatch/spanwatch/internal/field"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// Request is what a user asks of the gate: the flags of `spanwatch gate`,
// the JSON body of POST /api/v1/compare, or a deployment event. Every field
// is as the user typed it; NewPlan checks and parses them, so each caller
// gets the same rules and the same errors.
type Request struct {
	// Service is the service to gate (service_name). Required.
	Service string `json:"service"`
	// Operations (span names) to gate; empty: every operation.
	Operations []string `json:"operations"`
	// SpanKind is server (the default), client, consumer, producer,
	// internal, unspecified or any.
	SpanKind string `json:"span_kind"`
	// Baseline and Candidate select the populations. With neither given, the
	// two versions that served traffic in the window are found and compared,
	// older first.
	Baseline  ArmRequest `json:"baseline"`
	Candidate ArmRequest `json:"candidate"`
	// Window is a Prometheus duration ("5m") over Config.Window.
	Window string `json:"window"`
	// Naming is auto (the default), otel or legacy.
	Naming string `json:"naming"`
	// Namespace is the exposition namespace prefixing metric names
	// (jaeger_spm); detected with naming auto.
	Namespace string `json:"namespace"`
	// Unit of the duration histogram with an explicit naming: ms (the
	// default) or s; detected with naming auto.
	Unit string `json:"unit"`
	// Thresholds are keys of the config file's gate: section (alpha,
	// min_ratio, candidate_share, …) over Config, as a JSON (or YAML)
	// object.
	Thresholds json.RawMessage `json:"thresholds"`
	// Explicit lists the threshold keys (regress.Field.Key) the user set
	// outside Thresholds, such as the CLI's --min-ratio-p95: offset mode does
	// not widen those.
	Explicit []string `json:"-"`
}

// ArmRequest selects one population. Matchers narrow the arm in every mode;
// Offset (baseline only) shifts its window back; Start and End, together
// on both arms, are an explicit range. A candidate with Start alone and a
// baseline range is a before/after comparison: the candidate runs from
// Start to each look's time, growing, and the thresholds are offset mode's
// (the arms are time-shifted). Times are RFC3339, "now" or an offset before
// now ("-10m").
type ArmRequest struct {
	Matchers string `json:"matchers"`
	Offset   string `json:"offset"`
	Start    string `json:"start"`
	End      string `json:"end"`
}

func (a ArmRequest) empty() bool { return a == ArmRequest{} }

// RequestError is a request the gate cannot run: the user's to fix (exit
// 3, HTTP 400). Field names the request field, e.g. "baseline.matchers".
type RequestError struct {
	Field string
	Err   error
}

func (e *RequestError) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return e.Field + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *RequestError) Unwrap() error { return e.Err }

// BadRequest marks the error as the client's, for handlers that map errors
// without importing this package.
func (e *RequestError) BadRequest() bool { return true }

func badf(fieldName, format string, args ...any) error {
	return &RequestError{Field: fieldName, Err: fmt.Errorf(format, args...)}
}

// Plan is a checked Request: what Run reads and decides with.
type Plan struct {
	Service    string
	Operations []string
	// SpanKind is the span_kind label value (SPAN_KIND_SERVER); empty: any.
	SpanKind string
	// Baseline and Candidate are the populations; with Auto they are found
	// at run time.
	Baseline, Candidate Arm
	// Auto: no populations were given, and Run compares the two versions
	// that serve traffic in the window, waiting for the second one.
	Auto bool
	// Naming, Namespace and Unit select the series (see ResolveSeries).
	Naming, Namespace, Unit string
	// Config holds the window, the waiting and the thresholds in force
	// (offset mode's wider ratios applied).
	Config Config
	// Notes are choices made for the user, shown with the report.
	Notes []string
}

// Offset reports whether the baseline is the same window shifted back.
func (p *Plan) Offset() bool { return p.Baseline.Offset > 0 }

// TimeShifted reports whether the arms cover different times: the baseline
// shifted back, or a baseline range before a growing candidate. Such plans
// decide with offset mode's wider thresholds.
func (p *Plan) TimeShifted() bool { return p.Offset() || p.Candidate.Open() }

// Span kinds a request may name, and their label values.
var spanKinds = map[string]string{
	"server": "SPAN_KIND_SERVER", "client": "SPAN_KIND_CLIENT", "consumer": "SPAN_KIND_CONSUMER",
	"producer": "SPAN_KIND_PRODUCER", "internal": "SPAN_KIND_INTERNAL", "unspecified": "SPAN_KIND_UNSPECIFIED", "any": "",
}

// SpanKinds lists the span kinds a Request may name, for flags and docs.
func SpanKinds() []string {
	return []string{"server", "client", "consumer", "producer", "internal", "unspecified", "any"}
}

// NewPlan checks req against defaults (normally the config file's gate:
// section) at time now. Errors are *RequestError.
func NewPlan(req *Request, defaults Config, now time.Time) (*Plan, error) {
	if strings.TrimSpace(req.Service) == "" {
		return nil, badf("service", "is required")
	}
	p := &Plan{Service: req.Service, Operations: req.Operations, Config: defaults}
	kind, ok := spanKinds[strings.ToLower(req.SpanKind)]
	if req.SpanKind == "" {
		kind, ok = spanKinds["server"], true
	}
	if !ok {
		return nil, badf("span_kind", "must be one of %s, got %q", strings.Join(SpanKinds(), ", "), req.SpanKind)
	}
	p.SpanKind = kind
	switch req.Naming {
	case "", "auto":
		p.Naming = "auto"
	case spanmetrics.NamingOTel, spanmetrics.NamingLegacy:
		p.Naming = req.Naming
	default:
		return nil, badf("naming", "must be auto, otel or legacy, got %q", req.Naming)
	}
	switch req.Unit {
	case "", spanmetrics.UnitMilliseconds, spanmetrics.UnitSeconds:
		p.Unit = req.Unit
	default:
		return nil, badf("unit", "must be ms or s, got %q", req.Unit)
	}
	if req.Namespace != "" && !model.LegacyValidation.IsValidMetricName(req.Namespace) {
		return nil, badf("namespace", "%q is not a metric name prefix (letters, digits, _ and :, not starting with a digit)", req.Namespace)
	}
	p.Namespace = req.Namespace
	explicit, err := p.Config.override(req.Thresholds)
	if err != nil {
		return nil, err
	}
	explicit = append(explicit, req.Explicit...)
	if req.Window != "" {
		d, err := model.ParseDuration(req.Window)
		if err != nil {
			return nil, badf("window", "%v", err)
		}
		p.Config.Window = time.Duration(d)
	}
	if err := p.arms(req, now); err != nil {
		return nil, err
	}
	if p.Offset() {
		p.Notes = append(p.Notes, fmt.Sprintf("comparing with the same window %s earlier: daily traffic patterns and noisy neighbours look like regressions; prefer two versions in the same window",
			model.Duration(p.Baseline.Offset)))
	}
	if p.Candidate.Open() {
		p.Notes = append(p.Notes, fmt.Sprintf("time-shifted: the baseline ran %s, the candidate from %s on; traffic that changed in between looks like a regression",
			p.Baseline.Describe(p.Config.Window), p.Candidate.Start.UTC().Format(time.RFC3339)))
	}
	if p.TimeShifted() {
		if note := p.widenForOffset(explicit); note != "" {
			p.Notes = append(p.Notes, note)
		}
	}
	if err := p.Config.Validate(); err != nil {
		var fe *field.Error
		if errors.As(err, &fe) {
			return nil, &RequestError{Field: fe.Path, Err: fe.Err}
		}
		return nil, &RequestError{Err: err}
	}
	return p, nil
}

// override decodes a thresholds object over c with the config file's keys,
// strictly, and returns the keys it set (min_ratio.p95, …).
func (c *Config) override(raw json.RawMessage) ([]string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	var node yaml.Node
	if err := yaml.Unmarshal(raw, &node); err != nil {
		return nil, badf("thresholds", "%v", err)
	}
	// JSON is YAML: decode with the config file's keys, strictly.
	tmp := *c
	tmp.URL, tmp.Headers = "", nil
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&tmp); err != nil {
		return nil, badf("thresholds", "%v", err)
	}
	if tmp.URL != "" || tmp.Headers != nil {
		return nil, badf("thresholds", "url and headers are not thresholds; the comparison reads this server's API")
	}
	tmp.URL, tmp.Headers = c.URL, c.Headers
	*c = tmp
	return mappingKeys(&node, ""), nil
}

// mappingKeys lists the dotted key paths of a YAML document's mappings.
func mappingKeys(n *yaml.Node, prefix string) []string {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return mappingKeys(n.Content[0], prefix)
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i].Value
		if prefix != "" {
			key = prefix + "." + key
		}
		if sub := mappingKeys(n.Content[i+1], key); len(sub) > 0 {
			out = append(out, sub...)
			continue
		}
		out = append(out, key)
	}
	return out
}

// arms parses the populations.
func (p *Plan) arms(req *Request, now time.Time) error {
	ps := parser.NewParser(parser.Options{})
	var err error
	if p.Baseline, err = parseArm(ps, "baseline", req.Baseline, now); err != nil {
		return err
	}
	if p.Candidate, err = parseArm(ps, "candidate", req.Candidate, now); err != nil {
		return err
	}
	switch {
	case p.Candidate.Offset > 0:
		return badf("candidate.offset", "the candidate is always the latest window; shift the baseline back instead")
	case p.Baseline.Open():
		return badf("baseline.end", "the baseline needs an end; only the candidate may run to each look's time")
	case p.Candidate.Open() && p.Baseline.End.IsZero():
		return badf("baseline", "a candidate with a start and no end needs a baseline range (start and end)")
	case p.Candidate.Open() && p.Baseline.End.After(p.Candidate.Start):
		return badf("baseline.end", "a before/after comparison needs the baseline to end by the candidate's start")
	case p.Candidate.Open():
	case p.Baseline.End.IsZero() != p.Candidate.End.IsZero():
		return badf("", "baseline and candidate ranges go together: give start and end on both")
	}
	p.Auto = req.Baseline.empty() && req.Candidate.empty()
	return nil
}

// parseArm turns one ArmRequest into an Arm.
func parseArm(p parser.Parser, name string, a ArmRequest, now time.Time) (Arm, error) {
	var arm Arm
	ms, err := ParseMatchers(p, a.Matchers)
	if err != nil {
		return arm, badf(name+".matchers", "%v", err)
	}
	arm.Matchers = ms
	if a.Offset != "" {
		d, err := model.ParseDuration(a.Offset)
		if err != nil {
			return arm, badf(name+".offset", "%v", err)
		}
		if d <= 0 {
			return arm, badf(name+".offset", "must be positive, got %s", a.Offset)
		}
		arm.Offset = time.Duration(d)
	}
	if a.Start == "" && a.End == "" {
		return arm, nil
	}
	switch {
	case a.Start == "" || (a.End == "" && name != "candidate"):
		return arm, badf(name, "start and end go together")
	case arm.Offset > 0:
		return arm, badf(name, "choose offset or start/end")
	}
	if arm.Start, err = ParseTime(a.Start, now); err != nil {
		return arm, badf(name+".start", "%v", err)
	}
	if a.End == "" {
		return arm, nil // open: from Start to each look's time
	}
	if arm.End, err = ParseTime(a.End, now); err != nil {
		return arm, badf(name+".end", "%v", err)
	}
	if !arm.End.After(arm.Start) {
		return arm, badf(name, "the end must be after the start")
	}
	return arm, nil
}

// widenForOffset raises the quantile ratios to offset mode's, except those
// the user set, and says so.
func (p *Plan) widenForOffset(explicit []string) string {
	th := &p.Config.Thresholds
	wide := th.ForOffset()
	changed := false
	for _, q := range []struct {
		key       string
		cur, wide *float64
	}{
		{"min_ratio.p50", &th.MinRatio.P50, &wide.MinRatio.P50},
		{"min_ratio.p95", &th.MinRatio.P95, &wide.MinRatio.P95},
		{"min_ratio.p99", &th.MinRatio.P99, &wide.MinRatio.P99},
	} {
		if slices.Contains(explicit, q.key) || slices.Contains(explicit, "min_ratio") || *q.cur == *q.wide {
			continue
		}
		*q.cur, changed = *q.wide, true
	}
	if !changed {
		return ""
	}
	r := th.MinRatio
	return fmt.Sprintf("offset mode: a change counts from P50 ×%g, P95 ×%g, P99 ×%g (wider than between two versions in the same window; the min_ratio thresholds set them)", r.P50, r.P95, r.P99)
}

// IsRequestError reports whether err is the user's to fix.
func IsRequestError(err error) bool {
	var re *RequestError
	return errors.As(err, &re)
}
