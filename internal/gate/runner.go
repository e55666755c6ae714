package gate

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/spanwatch/spanwatch/internal/regress"
)

// Options configure one gate run.
type Options struct {
	Source              *Source
	Baseline, Candidate Arm
	// Window is the analysis window of each arm (ignored for explicit ranges).
	Window time.Duration
	// MaxWait bounds waiting for enough data.
	MaxWait time.Duration
	// PollInterval is the time between looks.
	PollInterval time.Duration
	// Thresholds of the decision rule.
	Thresholds regress.Thresholds
	// CandidateShare is the expected share of the candidate's traffic for
	// the sample-ratio check; 0 skips it.
	CandidateShare float64
	// Progress receives one line per look (stderr); nil discards.
	Progress io.Writer
	// Now and Sleep are the clock; nil means real time.
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// Report is the outcome of a run with its evidence.
type Report struct {
	Service             string
	Baseline, Candidate string // arm descriptions
	Verdict             regress.Verdict
	Result              regress.ServiceResult
	Looks, PlannedLooks int
	Waited              time.Duration
	Native              bool     // latencies from native histograms
	Notes               []string // warnings and choices made for the user
	At                  time.Time
}

// Run looks at both arms every PollInterval until a decision is reached or
// MaxWait has passed. A regression may be declared at any look: each look
// spends its share of α (see internal/regress), so repeated looks do not
// inflate false failures. A pass needs the minimum requests per arm.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = Sleep
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	planned := 1
	if o.PollInterval > 0 && o.MaxWait > 0 && !fixedRanges(o) {
		planned = int(o.MaxWait/o.PollInterval) + 1
	}
	start := o.Now()
	rep := &Report{
		Service:      o.Source.Service,
		Baseline:     o.Baseline.Describe(o.Window),
		Candidate:    o.Candidate.Describe(o.Window),
		PlannedLooks: planned,
	}
	for look := 1; ; look++ {
		now := o.Now()
		base, err := o.Source.Fetch(ctx, o.Baseline, now, o.Window)
		if err != nil {
			return nil, err
		}
		cand, err := o.Source.Fetch(ctx, o.Candidate, now, o.Window)
		if err != nil {
			return nil, err
		}
		res := regress.CompareService(operations(base, cand), o.Thresholds, regress.Look{Index: look, Total: planned}, o.CandidateShare)
		rep.Result, rep.Verdict, rep.Looks, rep.At = res, res.Verdict, look, now
		rep.Native = base.Native && cand.Native
		rep.Waited = now.Sub(start)
		fmt.Fprintf(o.Progress, "look %d/%d: baseline %.0f requests, candidate %.0f requests: %s\n",
			look, planned, base.Service.Requests, cand.Service.Requests, progressEstimate(res))
		if res.Verdict != regress.Inconclusive || look >= planned {
			return rep, nil
		}
		if err := o.Sleep(ctx, o.PollInterval); err != nil {
			return rep, err
		}
	}
}

func fixedRanges(o Options) bool { return !o.Baseline.End.IsZero() && !o.Candidate.End.IsZero() }

// operations pairs the operations of both arms, sorted by name. An
// operation seen in one arm only is compared against an empty arm, which
// the statistics report as not enough data.
func operations(base, cand *Data) []regress.Operation {
	var names []string
	for n := range base.Operations {
		names = append(names, n)
	}
	for n := range cand.Operations {
		if _, ok := base.Operations[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	ops := make([]regress.Operation, 0, len(names))
	for _, n := range names {
		ops = append(ops, regress.Operation{Name: n, Base: base.Operations[n], Cand: cand.Operations[n]})
	}
	return ops
}

func progressEstimate(res regress.ServiceResult) string {
	for _, f := range res.Service.Findings {
		if f.Check == "p95" && !math.IsNaN(f.Ratio) && f.Ratio > 0 {
			return fmt.Sprintf("P95 %s so far, %s", percent(f.Ratio), res.Verdict)
		}
	}
	return res.Verdict.String()
}

func percent(ratio float64) string { return fmt.Sprintf("%+.0f %%", (ratio-1)*100) }

// Sleep waits d, or less when ctx ends first (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ParseTime parses an RFC3339 time, "now", or an offset before now such as
// -2h (Prometheus durations), as the gate's ranges take them.
func ParseTime(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "now" {
		return now, nil
	}
	if strings.HasPrefix(v, "-") {
		d, err := model.ParseDuration(v[1:])
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(-time.Duration(d)), nil
	}
	return time.Parse(time.RFC3339, v)
}
