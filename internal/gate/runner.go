package gate

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/spanwatch/spanwatch/internal/regress"
)

// Options configure how a Plan runs: where it reads and how it waits.
type Options struct {
	// API is the Prometheus-compatible API the arms are read from.
	API v1.API
	// Progress receives one line per look; nil discards. Notes are in the
	// report, not here.
	Progress io.Writer
	// Rollback, when set, is undone after a regression verdict (and only
	// then); the report says what it did.
	Rollback Rollback
	// DryRun makes Rollback describe the change instead of making it.
	DryRun bool
	// Now and Sleep are the clock; nil means real time.
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// Rollback undoes a deploy after a regression verdict. internal/rollback
// implements it for Kubernetes Deployments; the CLI wires it in, so this
// package needs no Kubernetes client.
type Rollback interface {
	// Undo restores the previous revision; with dryRun it only describes
	// the change. It returns what it did, in words.
	Undo(ctx context.Context, dryRun bool) (string, error)
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
	// Rollback says what the rollback did after a regression; empty when
	// none was configured or the verdict was not a regression.
	Rollback string
	// BaselineData and CandidateData are what the last look read, for
	// callers that show the distributions; nil when no look ran.
	BaselineData, CandidateData *Data
}

// Run carries out a plan: it resolves the series, finds the two versions
// when the plan asks for them (waiting for the second), then looks at both
// arms every poll interval until a decision is reached or the plan's
// max_wait has passed. A regression may be declared at any look: each look
// spends its share of α (see internal/regress), so repeated looks do not
// inflate false failures. A pass needs the minimum requests per arm.
//
// Errors are *RequestError (the user's to fix), ErrBackend or ErrNoData,
// or ctx's error; on a rollback failure the report comes with the error.
func Run(ctx context.Context, p *Plan, o Options) (*Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = Sleep
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	start := o.Now()
	src := &Source{API: o.API, Service: p.Service, SpanKind: p.SpanKind, Operations: p.Operations}
	// Notes go into the report only, whose outputs print each once; the
	// progress lines are the looks.
	notes := slices.Clone(p.Notes)
	series, note, err := src.ResolveSeries(ctx, p.Naming, p.Namespace, p.Unit, start)
	if err != nil {
		return nil, err
	}
	src.Series = series
	if note != "" {
		notes = append(notes, note)
	}
	base, cand := p.Baseline, p.Candidate
	maxWait := p.Config.MaxWait
	if p.Auto {
		vs, looks, err := waitForVersions(ctx, src, p, start, o)
		if err != nil {
			return nil, err
		}
		if len(vs) < 2 {
			rep := noSecondVersion(p, vs, looks, o.Now().Sub(start), o.Now())
			rep.Notes = notes
			return rep, nil
		}
		base, cand = VersionArm(vs[0].Name), VersionArm(vs[1].Name)
		notes = append(notes, fmt.Sprintf("two versions served traffic: comparing the older %q (baseline) with the newer %q (candidate)", vs[0].Name, vs[1].Name))
		// The wait for the second version counts towards max_wait.
		maxWait = max(0, maxWait-o.Now().Sub(start))
	}
	rep, err := look(ctx, src, base, cand, p, maxWait, start, o)
	if err != nil {
		return rep, err
	}
	rep.Notes = notes
	if rep.Verdict == regress.Regression && o.Rollback != nil {
		what, err := o.Rollback.Undo(ctx, o.DryRun)
		if err != nil {
			return rep, fmt.Errorf("rollback: %w", err)
		}
		rep.Rollback = what
	}
	return rep, nil
}

// look runs the looks of one comparison.
func look(ctx context.Context, src *Source, base, cand Arm, p *Plan, maxWait time.Duration, start time.Time, o Options) (*Report, error) {
	window := p.Config.Window
	planned := 1
	if p.Config.PollInterval > 0 && maxWait > 0 && !fixedRanges(base, cand) {
		planned = int(maxWait/p.Config.PollInterval) + 1
	}
	rep := &Report{
		Service:      p.Service,
		Baseline:     base.Describe(window),
		Candidate:    cand.Describe(window),
		PlannedLooks: planned,
	}
	for look := 1; ; look++ {
		now := o.Now()
		b, err := src.Fetch(ctx, base, now, window)
		if err != nil {
			return nil, err
		}
		c, err := src.Fetch(ctx, cand, now, window)
		if err != nil {
			return nil, err
		}
		res := regress.CompareService(operations(b, c), p.Config.Thresholds, regress.Look{Index: look, Total: planned})
		rep.Result, rep.Verdict, rep.Looks, rep.At = res, res.Verdict, look, now
		rep.Native = b.Native && c.Native
		rep.Waited = now.Sub(start)
		rep.BaselineData, rep.CandidateData = b, c
		fmt.Fprintf(o.Progress, "look %d/%d: baseline %.0f requests, candidate %.0f requests: %s\n",
			look, planned, b.Service.Requests, c.Service.Requests, progressEstimate(res))
		if res.Verdict != regress.Inconclusive || look >= planned {
			return rep, nil
		}
		if err := o.Sleep(ctx, p.Config.PollInterval); err != nil {
			return rep, err
		}
	}
}

// waitForVersions finds the versions of the service that served traffic in
// the window, looking every poll interval until there are two or max_wait
// has passed: at the start of a rollout the new version has not served yet.
// More than two is a request error at once, since waiting does not resolve
// it.
func waitForVersions(ctx context.Context, src *Source, p *Plan, start time.Time, o Options) ([]Version, int, error) {
	deadline := start.Add(p.Config.MaxWait)
	window := model.Duration(p.Config.Window)
	for look := 1; ; look++ {
		vs, err := src.Versions(ctx, o.Now(), p.Config.Window, 24*time.Hour)
		if err != nil {
			return nil, look, err
		}
		if len(vs) > 2 {
			return nil, look, badf("", "no populations given and %d versions served %s in the last %s (%s): give baseline and candidate",
				len(vs), p.Service, window, versionNames(vs))
		}
		wait := deadline.Sub(o.Now())
		if len(vs) == 2 || wait <= 0 {
			return vs, look, nil
		}
		fmt.Fprintf(o.Progress, "look %d: %d version(s) of %s served traffic in the last %s (%s); waiting for a second one, up to %s more\n",
			look, len(vs), p.Service, window, versionNames(vs), wait.Round(time.Second))
		if err := o.Sleep(ctx, min(p.Config.PollInterval, wait)); err != nil {
			return nil, look, err
		}
	}
}

func versionNames(vs []Version) string {
	if len(vs) == 0 {
		return "none"
	}
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}

// noSecondVersion is the inconclusive report of an automatic comparison
// that found fewer than two versions by max_wait.
func noSecondVersion(p *Plan, vs []Version, looks int, waited time.Duration, at time.Time) *Report {
	reason := fmt.Sprintf("no populations given and only %d version(s) of %s served traffic in the last %s (%s) by max_wait: nothing to compare; a new version that never served is not a pass",
		len(vs), p.Service, model.Duration(p.Config.Window), versionNames(vs))
	return &Report{
		Service: p.Service, Baseline: "the older version (not found)", Candidate: "the newer version (not found)",
		Verdict: regress.Inconclusive, Result: regress.ServiceResult{Verdict: regress.Inconclusive, Reason: reason},
		Looks: looks, PlannedLooks: looks, Waited: waited, At: at,
	}
}

func fixedRanges(base, cand Arm) bool { return !base.End.IsZero() && !cand.End.IsZero() }

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
