package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/spanwatch/spanwatch/internal/gate"
	"github.com/spanwatch/spanwatch/internal/regress"
)

// ComparePath is the compare endpoint: POST, JSON in and out.
const ComparePath = "/api/v1/compare"

// CompareOptions configure the compare endpoint.
type CompareOptions struct {
	// API is the Prometheus-compatible API the comparison reads. Nil means
	// Handler, served in-process.
	API v1.API
	// Handler serves /api/v1/query when API is nil (the web mux itself).
	Handler http.Handler
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
	// Defaults are the thresholds a request's own override, normally the
	// config file's gate: section, so that the UI decides as `spanwatch
	// gate --config.file` does. Nil means gate.DefaultConfig().
	Defaults *gate.Config
}

// CompareRequest is the body of POST /api/v1/compare. Durations are
// Prometheus durations ("5m"); times are RFC3339, "now" or "-10m".
type CompareRequest struct {
	Service    string     `json:"service"`
	Operations []string   `json:"operations"`
	SpanKind   string     `json:"span_kind"` // server (default), client, …, or any
	Baseline   CompareArm `json:"baseline"`
	Candidate  CompareArm `json:"candidate"`
	Window     string     `json:"window"`
	Naming     string     `json:"naming"` // auto (default), otel or legacy
	Namespace  string     `json:"namespace"`
	// Unit of the duration histogram with an explicit naming: ms (default)
	// or s; detected with naming auto.
	Unit string `json:"unit"`
	// Thresholds are keys of the config file's gate: section (alpha,
	// min_ratio, candidate_share, …) over the gate's defaults.
	Thresholds json.RawMessage `json:"thresholds"`
}

// CompareArm selects one population, like the gate's flags. With neither
// arm given, the two versions that served traffic in the window are
// compared, older first.
type CompareArm struct {
	Matchers string `json:"matchers"`
	Offset   string `json:"offset"`
	Start    string `json:"start"`
	End      string `json:"end"`
}

// Distribution is the service's latency histogram of one arm, for the UI's
// overlaid chart. Bounds are upper bounds in ms; null is +Inf.
type Distribution struct {
	Bounds   []*float64 `json:"bounds"`
	Counts   []float64  `json:"counts"`
	Requests float64    `json:"requests"`
	Errors   float64    `json:"errors"`
}

// CompareResponse is the data of a successful answer: the report of
// `spanwatch gate --format json` and the two service distributions.
type CompareResponse struct {
	Report        any                     `json:"report"`
	Distributions map[string]Distribution `json:"distributions"`
}

type compareHandler struct {
	api      v1.API
	defaults *gate.Config
	now      func() time.Time
	logger   *slog.Logger
}

// NewCompareHandler returns the handler of POST /api/v1/compare. It runs
// one look of the same code as `spanwatch gate` (internal/gate over
// internal/regress), so the CLI and the UI never disagree.
func NewCompareHandler(o CompareOptions) http.Handler {
	h := &compareHandler{api: o.API, defaults: o.Defaults, now: o.Now, logger: o.Logger}
	if h.now == nil {
		h.now = time.Now
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.api == nil && o.Handler != nil {
		// The address is a constant; NewClient cannot fail on it.
		c, _ := api.NewClient(api.Config{Address: "http://spanwatch.internal", RoundTripper: handlerRT{o.Handler}})
		h.api = v1.NewAPI(c)
	}
	return h
}

// maxCompareBody bounds the request body.
const maxCompareBody = 1 << 20

func (h *compareHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeCompareError(w, http.StatusMethodNotAllowed, "bad_data", fmt.Errorf("method %s not allowed, use POST with a JSON body", r.Method))
		return
	}
	var req CompareRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCompareBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeCompareError(w, http.StatusBadRequest, "bad_data", fmt.Errorf("request body: %w", err))
		return
	}
	resp, err := h.compare(r.Context(), &req)
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		writeCompareError(w, http.StatusBadRequest, "bad_data", err)
		return
	case errors.Is(err, context.Canceled):
		writeCompareError(w, http.StatusServiceUnavailable, "canceled", err)
		return
	case err != nil:
		h.logger.Warn("compare failed", "err", err)
		writeCompareError(w, http.StatusServiceUnavailable, "unavailable", err)
		return
	}
	b, err := json.Marshal(map[string]any{"status": "success", "data": resp})
	if err != nil {
		writeCompareError(w, http.StatusInternalServerError, "internal", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// badRequest marks errors in the request (400).
type badRequest struct{ err error }

func (e badRequest) Error() string { return e.err.Error() }
func (e badRequest) Unwrap() error { return e.err }

func badf(format string, args ...any) error { return badRequest{fmt.Errorf(format, args...)} }

func writeCompareError(w http.ResponseWriter, code int, typ string, err error) {
	b, _ := json.Marshal(map[string]string{"status": "error", "errorType": typ, "error": err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// compare validates the request and runs one look of the gate.
func (h *compareHandler) compare(ctx context.Context, req *CompareRequest) (*CompareResponse, error) {
	if h.api == nil {
		return nil, errors.New("compare: no query API configured")
	}
	if req.Service == "" {
		return nil, badf("service is required")
	}
	cfg := gate.DefaultConfig()
	if h.defaults != nil {
		cfg = *h.defaults
	}
	// The comparison reads this server's API: where and how to query are
	// not the request's to choose.
	cfg.URL, cfg.Headers = "", nil
	if len(req.Thresholds) > 0 && string(req.Thresholds) != "null" {
		// JSON is YAML: decode with the config file's keys, strictly.
		dec := yaml.NewDecoder(bytes.NewReader(req.Thresholds))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return nil, badf("thresholds: %w", err)
		}
		if cfg.URL != "" || cfg.Headers != nil {
			return nil, badf("thresholds: url and headers are not thresholds; the comparison reads this server's API")
		}
	}
	if req.Baseline.Offset != "" && !setsKey(req.Thresholds, "min_ratio") {
		// As the gate does in offset mode.
		cfg.WidenForOffset()
	}
	if req.Window != "" {
		d, err := model.ParseDuration(req.Window)
		if err != nil {
			return nil, badf("window: %w", err)
		}
		cfg.Window = time.Duration(d)
	}
	if err := cfg.Validate(); err != nil {
		return nil, badf("thresholds: %w", err)
	}
	src := &gate.Source{API: h.api, Service: req.Service, Operations: req.Operations}
	switch kind := strings.ToLower(req.SpanKind); kind {
	case "", "server":
		src.SpanKind = "SPAN_KIND_SERVER"
	case "any":
	case "client", "consumer", "producer", "internal", "unspecified":
		src.SpanKind = "SPAN_KIND_" + strings.ToUpper(kind)
	default:
		return nil, badf("span_kind must be server, client, consumer, producer, internal, unspecified or any, got %q", req.SpanKind)
	}
	now := h.now()
	p := parser.NewParser(parser.Options{})
	base, err := parseArm(p, "baseline", req.Baseline, now)
	if err != nil {
		return nil, err
	}
	cand, err := parseArm(p, "candidate", req.Candidate, now)
	if err != nil {
		return nil, err
	}
	if (base.End.IsZero()) != (cand.End.IsZero()) {
		return nil, badf("baseline and candidate ranges go together")
	}
	var notes []string
	switch req.Naming {
	case "", "auto", "otel", "legacy":
	default:
		return nil, badf("naming must be auto, otel or legacy, got %q", req.Naming)
	}
	switch req.Unit {
	case "", "ms", "s":
	default:
		return nil, badf("unit must be ms or s, got %q", req.Unit)
	}
	series, note, err := src.ResolveSeries(ctx, req.Naming, req.Namespace, req.Unit, now)
	if err != nil {
		return nil, err
	}
	src.Series = series
	if note != "" {
		notes = append(notes, note)
	}
	if req.Baseline == (CompareArm{}) && req.Candidate == (CompareArm{}) {
		vs, err := src.Versions(ctx, now, cfg.Window, 24*time.Hour)
		if err != nil {
			return nil, err
		}
		if len(vs) != 2 {
			var names []string
			for _, v := range vs {
				names = append(names, v.Name)
			}
			return nil, badf("no populations given and %d versions served %s in the last %s (%s): give baseline and candidate",
				len(vs), req.Service, model.Duration(cfg.Window), strings.Join(names, ", "))
		}
		base, cand = gate.VersionArm(vs[0].Name), gate.VersionArm(vs[1].Name)
		notes = append(notes, fmt.Sprintf("two versions served traffic: comparing the older %q (baseline) with the newer %q (candidate)", vs[0].Name, vs[1].Name))
	}
	rep, err := gate.Run(ctx, gate.Options{
		Source: src, Baseline: base, Candidate: cand, Window: cfg.Window,
		Thresholds: cfg.Thresholds(), CandidateShare: cfg.CandidateShare,
		Now: func() time.Time { return now },
	})
	if err != nil {
		return nil, err
	}
	rep.Notes = notes
	resp := &CompareResponse{Report: gate.JSON(rep), Distributions: map[string]Distribution{}}
	for name, arm := range map[string]gate.Arm{"baseline": base, "candidate": cand} {
		d, err := src.Fetch(ctx, arm, now, cfg.Window)
		if err != nil {
			return nil, err
		}
		resp.Distributions[name] = distribution(d.Service)
	}
	return resp, nil
}

func distribution(a regress.Arm) Distribution {
	d := Distribution{Counts: a.Latency.Counts, Requests: a.Requests, Errors: a.Errors}
	for _, b := range a.Latency.Bounds {
		if math.IsInf(b, 0) || math.IsNaN(b) {
			d.Bounds = append(d.Bounds, nil)
			continue
		}
		d.Bounds = append(d.Bounds, &b)
	}
	if d.Counts == nil {
		d.Counts, d.Bounds = []float64{}, []*float64{}
	}
	return d
}

// parseArm turns the JSON arm into a gate arm.
func parseArm(p parser.Parser, name string, a CompareArm, now time.Time) (gate.Arm, error) {
	var arm gate.Arm
	ms, err := gate.ParseMatchers(p, a.Matchers)
	if err != nil {
		return arm, badf("%s.matchers: %w", name, err)
	}
	arm.Matchers = ms
	if a.Offset != "" {
		d, err := model.ParseDuration(a.Offset)
		if err != nil {
			return arm, badf("%s.offset: %w", name, err)
		}
		arm.Offset = time.Duration(d)
	}
	if a.Start != "" || a.End != "" {
		if a.Start == "" || a.End == "" {
			return arm, badf("%s: start and end go together", name)
		}
		if arm.Offset > 0 {
			return arm, badf("%s: choose offset or start/end", name)
		}
		if arm.Start, err = gate.ParseTime(a.Start, now); err != nil {
			return arm, badf("%s.start: %w", name, err)
		}
		if arm.End, err = gate.ParseTime(a.End, now); err != nil {
			return arm, badf("%s.end: %w", name, err)
		}
		if !arm.End.After(arm.Start) {
			return arm, badf("%s: the end must be after the start", name)
		}
	}
	return arm, nil
}

// handlerRT serves HTTP requests with a handler in-process, so the compare
// endpoint reads the very API it is mounted beside (embedded TSDB or the
// --query.url proxy) without a network round trip.
type handlerRT struct{ h http.Handler }

func (t handlerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	t.h.ServeHTTP(rec, r)
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.code, http.StatusText(rec.code)), StatusCode: rec.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(&rec.body), ContentLength: int64(rec.body.Len()), Request: r,
	}, nil
}

// recorder is a minimal buffering http.ResponseWriter.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// setsKey reports whether the JSON object raw has the key.
func setsKey(raw json.RawMessage, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}
