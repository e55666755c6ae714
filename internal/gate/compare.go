package gate

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/spanwatch/spanwatch/internal/regress"
)

// Comparer answers POST /api/v1/compare: one look of the same Request →
// Plan → Run path as `spanwatch gate`, so the CLI and the UI never
// disagree. It does not wait: max_wait is 0, and an automatic comparison
// with fewer than two versions is inconclusive at once.
type Comparer struct {
	// API is the Prometheus-compatible API the comparison reads.
	API v1.API
	// Defaults are the thresholds a request's own override, normally the
	// config file's gate: section, so that the UI decides as `spanwatch
	// gate --config.file` does. Where and how to query (url, headers) are
	// not used: the comparison reads API.
	Defaults Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// CompareResponse is the data of a successful answer: the report of
// `spanwatch gate --format json` and the two service distributions that
// the run read.
type CompareResponse struct {
	Report        any                     `json:"report"`
	Distributions map[string]Distribution `json:"distributions"`
}

// Distribution is the service's latency histogram of one arm, for the UI's
// overlaid chart. Bounds are upper bounds in ms; null is +Inf.
type Distribution struct {
	Bounds   []*float64 `json:"bounds"`
	Counts   []float64  `json:"counts"`
	Requests float64    `json:"requests"`
	Errors   float64    `json:"errors"`
}

// Compare decodes a Request from body (JSON, unknown fields rejected),
// plans and runs it. Errors in the request are *RequestError.
func (c *Comparer) Compare(ctx context.Context, body io.Reader) (any, error) {
	var req Request
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, &RequestError{Field: "request body", Err: err}
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	at := now()
	defaults := c.Defaults
	defaults.URL, defaults.Headers, defaults.MaxWait = "", nil, 0
	plan, err := NewPlan(&req, defaults, at)
	if err != nil {
		return nil, err
	}
	rep, err := Run(ctx, plan, Options{API: c.API, Now: func() time.Time { return at }})
	if err != nil {
		return nil, err
	}
	resp := &CompareResponse{Report: JSON(rep), Distributions: map[string]Distribution{}}
	for name, d := range map[string]*Data{"baseline": rep.BaselineData, "candidate": rep.CandidateData} {
		if d == nil {
			resp.Distributions[name] = distribution(regress.Arm{})
			continue
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
