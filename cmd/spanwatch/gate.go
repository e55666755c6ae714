package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/gate"
	"github.com/spanwatch/spanwatch/internal/query"
	"github.com/spanwatch/spanwatch/internal/regress"
)

// Exit codes of `spanwatch gate`.
const (
	gatePass         = 0
	gateRegression   = 1
	gateInconclusive = 2
	gateUsage        = 3
	gateBackend      = 4
)

const gateHelp = `Decide whether a deploy made a service slower or less reliable.

Compares a baseline and a candidate population of span metrics with statistics (tail exceedance,
Mann-Whitney, error proportions; Holm across checks; alpha spending across looks), waits until there is
enough data instead of sleeping, explains the verdict, and can roll the Deployment back.

Exit codes: 0 pass, 1 regression, 2 inconclusive (see --on-inconclusive), 3 usage or configuration
error, 4 query backend unreachable or failing. Missing data is never a pass.`

type gateCmd struct {
	url            string
	headerFlags    []string
	service        string
	operations     []string
	spanKind       string
	baseline       string
	candidate      string
	baselineOffset model.Duration
	baselineRange  string
	candidateRange string
	window         model.Duration
	maxWait        model.Duration
	poll           model.Duration
	naming         string
	metricsNS      string
	unit           string
	format         string
	configFile     string
	cfg            gate.Config
	set            map[string]*bool // flags given on the command line
	rollback       string
	namespace      string
	kubeconfig     string
	dryRun         bool
	timeout        model.Duration
}

func newGateCmd(a *kingpin.Application) *gateCmd {
	c := &gateCmd{cfg: gate.DefaultConfig(), set: map[string]*bool{}}
	cmd := a.Command("gate", gateHelp)
	c.flag(cmd, "url", "Prometheus-compatible API to read span metrics from (spanwatch, Prometheus, Mimir, Thanos); http://user:password@host sends basic authentication.",
		"http://localhost:8890").StringVar(&c.url)
	cmd.Flag("header", `HTTP header sent with every query, as "Name: value" (repeatable), e.g. "X-Scope-OrgID: team-a" for a Mimir tenant or "Authorization: Bearer $TOKEN".`).
		PlaceHolder("<header>").StringsVar(&c.headerFlags)
	cmd.Flag("service", "Service to gate (service_name).").Required().StringVar(&c.service)
	cmd.Flag("operation", "Operation (span name) to gate; repeatable. Default: every operation of the service.").StringsVar(&c.operations)
	cmd.Flag("span-kind", "Span kind to gate: server, client, consumer, producer, internal, or any.").
		Default("server").EnumVar(&c.spanKind, "server", "client", "consumer", "producer", "internal", "unspecified", "any")
	cmd.Flag("baseline", `Label matchers selecting the baseline, e.g. 'service_version="v1"'.`).StringVar(&c.baseline)
	cmd.Flag("candidate", `Label matchers selecting the candidate, e.g. 'service_version="v2"'.`).StringVar(&c.candidate)
	cmd.Flag("baseline-offset", "Compare with the same window shifted back (1h, 1d, 1w). Confounded by traffic patterns: prefer --baseline/--candidate.").
		SetValue(&c.baselineOffset)
	cmd.Flag("baseline-range", "Explicit baseline range START,END (RFC3339 or relative like -2h,-1h).").StringVar(&c.baselineRange)
	cmd.Flag("candidate-range", "Explicit candidate range START,END (RFC3339 or relative like -10m,now).").StringVar(&c.candidateRange)
	cmd.Flag("config.file", "Configuration file whose gate: section sets the defaults below (flags win).").PlaceHolder("<path>").StringVar(&c.configFile)
	d := c.cfg
	c.flag(cmd, "window", "Analysis window of each arm.", model.Duration(d.Window).String()).SetValue(&c.window)
	c.flag(cmd, "max-wait", "Longest time to wait for enough data before answering inconclusive.", model.Duration(d.MaxWait).String()).SetValue(&c.maxWait)
	c.flag(cmd, "poll-interval", "Time between looks at the data.", model.Duration(d.PollInterval).String()).SetValue(&c.poll)
	cmd.Flag("naming", "Series naming: otel (traces_span_metrics_*), legacy (calls_total, latency_*), or auto.").
		Default("auto").EnumVar(&c.naming, "auto", "otel", "legacy")
	cmd.Flag("duration-unit", "Unit of the duration histogram with an explicit --naming: ms (traces_span_metrics_duration_milliseconds) or s (…_duration_seconds); detected with --naming=auto.").
		Default("ms").EnumVar(&c.unit, "ms", "s")
	cmd.Flag("metrics-namespace", "Exposition namespace prefixing metric names (e.g. jaeger_spm); with --naming=auto it is detected.").StringVar(&c.metricsNS)
	cmd.Flag("format", "Output on stdout: table, json, junit or markdown.").Default("table").EnumVar(&c.format, "table", "json", "junit", "markdown")
	c.flag(cmd, "on-inconclusive", "Exit code for an inconclusive verdict: inconclusive (2), pass (0) or fail (1).", d.OnInconclusive).
		EnumVar(&c.cfg.OnInconclusive, "inconclusive", "pass", "fail")
	c.flag(cmd, "candidate-share", "Expected share of traffic for the candidate (e.g. 0.2 for a 20 % canary); enables the sample-ratio check.", fmt.Sprint(d.CandidateShare)).Float64Var(&c.cfg.CandidateShare)
	c.flag(cmd, "srm-alpha", "Significance of the sample-ratio-mismatch check (with --candidate-share).", fmt.Sprint(d.SRMAlpha)).Float64Var(&c.cfg.SRMAlpha)
	c.flag(cmd, "alpha", "Family-wise error rate across the gated checks (Holm).", fmt.Sprint(d.Alpha)).Float64Var(&c.cfg.Alpha)
	c.flag(cmd, "fdr", "False-discovery rate of the per-operation findings (Benjamini-Hochberg).", fmt.Sprint(d.FDR)).Float64Var(&c.cfg.FDR)
	c.flag(cmd, "min-ratio-p50", "Smallest P50 ratio that counts as a regression.", fmt.Sprint(d.MinRatio.P50)).Float64Var(&c.cfg.MinRatio.P50)
	c.flag(cmd, "min-ratio-p95", "Smallest P95 ratio that counts as a regression.", fmt.Sprint(d.MinRatio.P95)).Float64Var(&c.cfg.MinRatio.P95)
	c.flag(cmd, "min-ratio-p99", "Smallest P99 ratio that counts as a regression.", fmt.Sprint(d.MinRatio.P99)).Float64Var(&c.cfg.MinRatio.P99)
	c.flag(cmd, "min-abs-change", "Smallest absolute latency change (ms) that counts; at least one bucket width is always required.", fmt.Sprint(d.MinAbsChange)).Float64Var(&c.cfg.MinAbsChange)
	c.flag(cmd, "error-points", "Smallest error-rate increase that counts (0.005 = 0.5 percentage points).", fmt.Sprint(d.ErrorRate.MinIncrease)).Float64Var(&c.cfg.ErrorRate.MinIncrease)
	c.flag(cmd, "error-ratio", "Smallest error-rate ratio that counts.", fmt.Sprint(d.ErrorRate.MinRatio)).Float64Var(&c.cfg.ErrorRate.MinRatio)
	c.flag(cmd, "min-requests-p50", "Requests per arm needed before P50 (and errors) can pass.", fmt.Sprint(d.MinRequests.P50)).Float64Var(&c.cfg.MinRequests.P50)
	c.flag(cmd, "min-requests-p95", "Requests per arm needed before P95 can pass.", fmt.Sprint(d.MinRequests.P95)).Float64Var(&c.cfg.MinRequests.P95)
	c.flag(cmd, "min-requests-p99", "Requests per arm needed before P99 can pass.", fmt.Sprint(d.MinRequests.P99)).Float64Var(&c.cfg.MinRequests.P99)
	cmd.Flag("rollback", "On a regression (exit 1 only), roll this back like `kubectl rollout undo`: deployment/NAME.").PlaceHolder("deployment/NAME").StringVar(&c.rollback)
	cmd.Flag("namespace", "Kubernetes namespace of --rollback.").Default("default").StringVar(&c.namespace)
	cmd.Flag("kubeconfig", "kubeconfig for --rollback; default: in-cluster config, else $KUBECONFIG or ~/.kube/config.").StringVar(&c.kubeconfig)
	cmd.Flag("dry-run", "With --rollback: print what would change, change nothing.").BoolVar(&c.dryRun)
	cmd.Flag("query.timeout", "Timeout of each query.").Default("30s").SetValue(&c.timeout)
	return c
}

// flag declares a flag whose default may come from the config file.
func (c *gateCmd) flag(cmd *kingpin.CmdClause, name, help, def string) *kingpin.FlagClause {
	set := new(bool)
	c.set[name] = set
	return cmd.Flag(name, help).Default(def).IsSetByUser(set)
}

// applyFile takes the gate: section of --config.file for every flag not
// given on the command line.
func (c *gateCmd) applyFile() error {
	if c.configFile == "" {
		return c.finish()
	}
	f, err := config.Load(c.configFile)
	if err != nil {
		return err
	}
	fc, cur := f.Gate, &c.cfg
	take := func(name string, apply func()) {
		if !*c.set[name] {
			apply()
		}
	}
	if fc.URL != "" {
		take("url", func() { c.url = fc.URL })
	}
	cur.Headers = fc.Headers
	take("window", func() { c.window = model.Duration(fc.Window) })
	take("max-wait", func() { c.maxWait = model.Duration(fc.MaxWait) })
	take("poll-interval", func() { c.poll = model.Duration(fc.PollInterval) })
	take("on-inconclusive", func() { cur.OnInconclusive = fc.OnInconclusive })
	take("candidate-share", func() { cur.CandidateShare = fc.CandidateShare })
	take("alpha", func() { cur.Alpha = fc.Alpha })
	take("srm-alpha", func() { cur.SRMAlpha = fc.SRMAlpha })
	take("fdr", func() { cur.FDR = fc.FDR })
	take("min-ratio-p50", func() { cur.MinRatio.P50 = fc.MinRatio.P50 })
	take("min-ratio-p95", func() { cur.MinRatio.P95 = fc.MinRatio.P95 })
	take("min-ratio-p99", func() { cur.MinRatio.P99 = fc.MinRatio.P99 })
	take("min-abs-change", func() { cur.MinAbsChange = fc.MinAbsChange })
	take("error-points", func() { cur.ErrorRate.MinIncrease = fc.ErrorRate.MinIncrease })
	take("error-ratio", func() { cur.ErrorRate.MinRatio = fc.ErrorRate.MinRatio })
	take("min-requests-p50", func() { cur.MinRequests.P50 = fc.MinRequests.P50 })
	take("min-requests-p95", func() { cur.MinRequests.P95 = fc.MinRequests.P95 })
	take("min-requests-p99", func() { cur.MinRequests.P99 = fc.MinRequests.P99 })
	return c.finish()
}

// finish copies the durations into cfg and validates it.
func (c *gateCmd) finish() error {
	c.cfg.Window, c.cfg.MaxWait, c.cfg.PollInterval = time.Duration(c.window), time.Duration(c.maxWait), time.Duration(c.poll)
	if err := c.cfg.Validate(); err != nil {
		return fmt.Errorf("gate settings: %w", err)
	}
	return nil
}

// run executes the gate and returns its exit code.
func (c *gateCmd) run(ctx context.Context, stdout, stderr io.Writer) int {
	code, err := c.execute(ctx, stdout, stderr)
	if err != nil && ctx.Err() != nil && code != gateRegression {
		// Ctrl-C or a CI timeout while waiting: no verdict, which is never
		// a pass.
		code, err = gateInconclusive, fmt.Errorf("interrupted before a verdict (%w); nothing was rolled back", ctx.Err())
	}
	if err != nil {
		fmt.Fprintf(stderr, "spanwatch gate: %v\n", err)
	}
	return code
}

func (c *gateCmd) execute(ctx context.Context, stdout, stderr io.Writer) (int, error) {
	if err := c.applyFile(); err != nil {
		return gateUsage, err
	}
	p := parser.NewParser(parser.Options{})
	headers, err := query.ParseHeaders(c.headerFlags)
	if err != nil {
		return gateUsage, fmt.Errorf("--header: %w", err)
	}
	// A header given on the command line wins over the file's.
	remote := query.Remote{URL: c.url, Headers: map[string]string{}}
	for k, v := range c.cfg.Headers {
		remote.Headers[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	maps.Copy(remote.Headers, headers)
	client, err := remote.Client(&timeoutRT{next: http.DefaultTransport, timeout: time.Duration(c.timeout)})
	if err != nil {
		return gateUsage, fmt.Errorf("--url: %w", err)
	}
	src := &gate.Source{API: v1.NewAPI(client), Service: c.service, Operations: c.operations}
	if c.spanKind != "any" {
		src.SpanKind = "SPAN_KIND_" + strings.ToUpper(c.spanKind)
	}
	now := time.Now()
	plan, err := c.prepareRollback(ctx, stderr)
	if err != nil {
		return gateUsage, err
	}
	base, cand, notes, auto, err := c.arms(p, now)
	if err != nil {
		return exitFor(err), err
	}
	if base.Offset > 0 {
		if note := c.widenForOffset(); note != "" {
			notes = append(notes, note)
		}
	}
	series, note, err := src.ResolveSeries(ctx, c.naming, c.metricsNS, c.unit, now)
	if err != nil {
		return exitFor(err), err
	}
	src.Series = series
	if note != "" {
		notes = append(notes, note)
	}
	var rep *gate.Report
	maxWait := time.Duration(c.maxWait)
	if auto {
		vs, looks, err := c.waitForVersions(ctx, src, now, stderr)
		if err != nil {
			return exitFor(err), err
		}
		if len(vs) == 2 {
			base, cand = gate.VersionArm(vs[0].Name), gate.VersionArm(vs[1].Name)
			notes = append(notes, fmt.Sprintf("two versions served traffic: comparing the older %q (baseline) with the newer %q (candidate)", vs[0].Name, vs[1].Name))
			// The wait for the second version counts towards --max-wait.
			maxWait = max(0, maxWait-time.Since(now))
		} else {
			rep = noSecondVersion(c.service, vs, looks, time.Since(now), time.Duration(c.window))
		}
	}
	for _, n := range notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	if rep == nil {
		rep, err = gate.Run(ctx, gate.Options{
			Source: src, Baseline: base, Candidate: cand,
			Window: time.Duration(c.window), MaxWait: maxWait, PollInterval: time.Duration(c.poll),
			Thresholds: c.cfg.Thresholds(), CandidateShare: c.cfg.CandidateShare, Progress: stderr,
		})
		if err != nil {
			return exitFor(err), err
		}
	}
	rep.Notes = notes
	if err := gate.Write(stdout, c.format, rep); err != nil {
		return gateUsage, err
	}
	if path := os.Getenv("GITHUB_STEP_SUMMARY"); path != "" {
		if err := appendSummary(path, rep); err != nil {
			fmt.Fprintf(stderr, "spanwatch gate: writing GITHUB_STEP_SUMMARY: %v\n", err)
		}
	}
	code := gatePass
	switch rep.Verdict {
	case regress.Regression:
		code = gateRegression
	case regress.Inconclusive:
		switch c.cfg.OnInconclusive {
		case "pass":
			code = gatePass
		case "fail":
			code = gateRegression
		default:
			code = gateInconclusive
		}
	}
	if rep.Verdict == regress.Regression && plan != nil {
		if err := plan.run(ctx, c.dryRun, stderr); err != nil {
			return code, fmt.Errorf("rollback: %w", err)
		}
	}
	return code, nil
}

// widenForOffset raises the practical thresholds for offset mode, except
// those given on the command line, and says so.
func (c *gateCmd) widenForOffset() string {
	cli := c.cfg.MinRatio
	if !c.cfg.WidenForOffset() {
		return ""
	}
	for name, q := range map[string]struct{ cur, cli *float64 }{
		"min-ratio-p50": {&c.cfg.MinRatio.P50, &cli.P50}, "min-ratio-p95": {&c.cfg.MinRatio.P95, &cli.P95}, "min-ratio-p99": {&c.cfg.MinRatio.P99, &cli.P99},
	} {
		if *c.set[name] {
			*q.cur = *q.cli
		}
	}
	r := c.cfg.MinRatio
	return fmt.Sprintf("offset mode: a change counts from P50 ×%g, P95 ×%g, P99 ×%g (wider than between two versions in the same window; --min-ratio-* set them)", r.P50, r.P95, r.P99)
}

// waitForVersions finds the versions of the service that served traffic in
// the window, looking every poll interval until there are two or --max-wait
// has passed: at the start of a rollout the new version has not served yet.
// More than two is a usage error at once, since waiting does not resolve it.
func (c *gateCmd) waitForVersions(ctx context.Context, src *gate.Source, start time.Time, stderr io.Writer) ([]gate.Version, int, error) {
	deadline := start.Add(time.Duration(c.maxWait))
	for look := 1; ; look++ {
		vs, err := src.Versions(ctx, time.Now(), time.Duration(c.window), 24*time.Hour)
		if err != nil {
			return nil, look, err
		}
		if len(vs) > 2 {
			return nil, look, usageError{fmt.Errorf("no populations given and %d versions served %s in the last %s (%s): use --baseline and --candidate",
				len(vs), c.service, c.window, versionNames(vs))}
		}
		wait := time.Until(deadline)
		if len(vs) == 2 || wait <= 0 {
			return vs, look, nil
		}
		fmt.Fprintf(stderr, "look %d: %d version(s) of %s served traffic in the last %s (%s); waiting for a second one, up to %s more\n",
			look, len(vs), c.service, c.window, versionNames(vs), wait.Round(time.Second))
		if err := gate.Sleep(ctx, min(time.Duration(c.poll), wait)); err != nil {
			return nil, look, err
		}
	}
}

func versionNames(vs []gate.Version) string {
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
// that found fewer than two versions by --max-wait.
func noSecondVersion(service string, vs []gate.Version, looks int, waited, window time.Duration) *gate.Report {
	reason := fmt.Sprintf("no populations given and only %d version(s) of %s served traffic in the last %s (%s) by --max-wait: nothing to compare; a new version that never served is not a pass",
		len(vs), service, model.Duration(window), versionNames(vs))
	return &gate.Report{
		Service: service, Baseline: "the older version (not found)", Candidate: "the newer version (not found)",
		Verdict: regress.Inconclusive, Result: regress.ServiceResult{Verdict: regress.Inconclusive, Reason: reason},
		Looks: looks, PlannedLooks: looks, Waited: waited, At: time.Now(),
	}
}

// arms builds baseline and candidate from the flags; auto means none was
// given and the two versions in the window are to be found.
func (c *gateCmd) arms(p parser.Parser, now time.Time) (base, cand gate.Arm, notes []string, auto bool, err error) {
	if base.Matchers, err = gate.ParseMatchers(p, c.baseline); err != nil {
		return base, cand, nil, false, usageError{fmt.Errorf("--baseline: %w", err)}
	}
	if cand.Matchers, err = gate.ParseMatchers(p, c.candidate); err != nil {
		return base, cand, nil, false, usageError{fmt.Errorf("--candidate: %w", err)}
	}
	matchers := len(base.Matchers)+len(cand.Matchers) > 0
	ranges := c.baselineRange != "" || c.candidateRange != ""
	switch {
	case ranges && (matchers || c.baselineOffset > 0):
		return base, cand, nil, false, usageError{errors.New("choose one way to select the populations: --baseline/--candidate, --baseline-offset, or --baseline-range/--candidate-range")}
	case ranges:
		if c.baselineRange == "" || c.candidateRange == "" {
			return base, cand, nil, false, usageError{errors.New("--baseline-range and --candidate-range go together")}
		}
		if base.Start, base.End, err = parseRange(c.baselineRange, now); err != nil {
			return base, cand, nil, false, usageError{fmt.Errorf("--baseline-range: %w", err)}
		}
		if cand.Start, cand.End, err = parseRange(c.candidateRange, now); err != nil {
			return base, cand, nil, false, usageError{fmt.Errorf("--candidate-range: %w", err)}
		}
	case c.baselineOffset > 0:
		// Matchers may narrow both arms (e.g. one version) in offset mode.
		base.Offset = time.Duration(c.baselineOffset)
		notes = append(notes, fmt.Sprintf("comparing with the same window %s earlier: daily traffic patterns and noisy neighbours look like regressions; prefer --baseline/--candidate with two versions in the same window", c.baselineOffset))
	case !matchers:
		return base, cand, nil, true, nil
	}
	return base, cand, notes, false, nil
}

// parseRange parses START,END with RFC3339 times, "now", or offsets like
// -2h relative to now.
func parseRange(s string, now time.Time) (time.Time, time.Time, error) {
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return time.Time{}, time.Time{}, fmt.Errorf("%q: want START,END", s)
	}
	start, err := gate.ParseTime(a, now)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	end, err := gate.ParseTime(b, now)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if !end.After(start) {
		return time.Time{}, time.Time{}, fmt.Errorf("%q: the end must be after the start", s)
	}
	return start, end, nil
}

func exitFor(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return gateUsage
	case errors.Is(err, gate.ErrBackend):
		return gateBackend
	case errors.Is(err, gate.ErrNoData):
		return gateInconclusive
	}
	return gateBackend
}

func appendSummary(path string, rep *gate.Report) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := gate.Write(f, "markdown", rep); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// timeoutRT bounds every request to the query backend.
type timeoutRT struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (t *timeoutRT) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.timeout <= 0 {
		return t.next.RoundTrip(r)
	}
	ctx, cancel := context.WithTimeout(r.Context(), t.timeout)
	resp, err := t.next.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
