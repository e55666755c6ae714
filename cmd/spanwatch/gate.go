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
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/gate"
	"github.com/spanwatch/spanwatch/internal/query"
	"github.com/spanwatch/spanwatch/internal/regress"
)

// gateNow is the gate's clock; tests set it.
var gateNow = time.Now

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
	deployment     string
	now            func() time.Time
}

func newGateCmd(a *kingpin.Application) *gateCmd {
	c := &gateCmd{cfg: gate.DefaultConfig(), set: map[string]*bool{}, now: gateNow}
	cmd := a.Command("gate", gateHelp)
	c.flag(cmd, "url", "Prometheus-compatible API to read span metrics from (spanwatch, Prometheus, Mimir, Thanos); http://user:password@host sends basic authentication.",
		"http://localhost:8890").StringVar(&c.url)
	cmd.Flag("header", `HTTP header sent with every query, as "Name: value" (repeatable), e.g. "X-Scope-OrgID: team-a" for a Mimir tenant or "Authorization: Bearer $TOKEN".`).
		PlaceHolder("<header>").StringsVar(&c.headerFlags)
	cmd.Flag("service", "Service to gate (service_name).").Required().StringVar(&c.service)
	cmd.Flag("operation", "Operation (span name) to gate; repeatable. Default: every operation of the service.").StringsVar(&c.operations)
	cmd.Flag("span-kind", "Span kind to gate: "+strings.Join(gate.SpanKinds(), ", ")+".").
		Default("server").EnumVar(&c.spanKind, gate.SpanKinds()...)
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
		EnumVar(&c.cfg.OnInconclusive, gate.OnInconclusiveInconclusive, gate.OnInconclusivePass, gate.OnInconclusiveFail)
	// One flag per threshold, from the one list (regress.Thresholds).
	for _, f := range c.cfg.Fields() {
		c.flag(cmd, f.Flag, f.Help, strconv.FormatFloat(*f.Value, 'g', -1, 64)).Float64Var(f.Value)
	}
	cmd.Flag("rollback", "On a regression (exit 1 only), roll this back like `kubectl rollout undo`: deployment/NAME.").PlaceHolder("deployment/NAME").StringVar(&c.rollback)
	cmd.Flag("namespace", "Kubernetes namespace of --rollback.").Default("default").StringVar(&c.namespace)
	cmd.Flag("kubeconfig", "kubeconfig for --rollback; default: in-cluster config, else $KUBECONFIG or ~/.kube/config.").StringVar(&c.kubeconfig)
	cmd.Flag("dry-run", "With --rollback: print what would change, change nothing.").BoolVar(&c.dryRun)
	cmd.Flag("query.timeout", "Timeout of each query.").Default("30s").SetValue(&c.timeout)
	cmd.Flag("deployment", "Wait for the verdict spanwatch serve reached on its own for this deployment of --service (latest, or a service.version) instead of comparing here; --url must be a spanwatch server. Same exit codes; --max-wait bounds the wait, --rollback applies to a regression. See docs/deployments.md.").
		PlaceHolder("latest|VERSION").StringVar(&c.deployment)
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
	fc := f.Gate
	take := func(name string, apply func()) {
		if !*c.set[name] {
			apply()
		}
	}
	if fc.URL != "" {
		take("url", func() { c.url = fc.URL })
	}
	c.cfg.Headers = fc.Headers
	take("window", func() { c.window = model.Duration(fc.Window) })
	take("max-wait", func() { c.maxWait = model.Duration(fc.MaxWait) })
	take("poll-interval", func() { c.poll = model.Duration(fc.PollInterval) })
	take("on-inconclusive", func() { c.cfg.OnInconclusive = fc.OnInconclusive })
	file := fc.Fields()
	for i, fl := range c.cfg.Fields() {
		take(fl.Flag, func() { *fl.Value = *file[i].Value })
	}
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

// request is what the flags ask for, in the gate's one request type.
func (c *gateCmd) request() (*gate.Request, error) {
	req := &gate.Request{
		Service: c.service, Operations: c.operations, SpanKind: c.spanKind,
		Baseline:  gate.ArmRequest{Matchers: c.baseline},
		Candidate: gate.ArmRequest{Matchers: c.candidate},
		Naming:    c.naming, Namespace: c.metricsNS,
	}
	if c.naming != "auto" {
		req.Unit = c.unit
	}
	if c.baselineOffset > 0 {
		req.Baseline.Offset = c.baselineOffset.String()
	}
	ranges := c.baselineRange != "" || c.candidateRange != ""
	if ranges && c.baselineOffset > 0 {
		return nil, usageError{errors.New("choose one way to select the baseline: --baseline-offset or --baseline-range/--candidate-range")}
	}
	if ranges && (c.baselineRange == "" || c.candidateRange == "") {
		return nil, usageError{errors.New("--baseline-range and --candidate-range go together")}
	}
	for _, r := range []struct {
		flag, v string
		arm     *gate.ArmRequest
	}{{"--baseline-range", c.baselineRange, &req.Baseline}, {"--candidate-range", c.candidateRange, &req.Candidate}} {
		if r.v == "" {
			continue
		}
		start, end, ok := strings.Cut(r.v, ",")
		if !ok {
			return nil, usageError{fmt.Errorf("%s %q: want START,END", r.flag, r.v)}
		}
		r.arm.Start, r.arm.End = strings.TrimSpace(start), strings.TrimSpace(end)
	}
	for _, f := range c.cfg.Fields() {
		if *c.set[f.Flag] {
			req.Explicit = append(req.Explicit, f.Key)
		}
	}
	return req, nil
}

// flagOf names the flag behind a request field, for error messages.
var flagOf = map[string]string{
	"service": "--service", "span_kind": "--span-kind", "naming": "--naming", "unit": "--duration-unit",
	"namespace": "--metrics-namespace", "window": "--window",
	"baseline.matchers": "--baseline", "candidate.matchers": "--candidate", "baseline.offset": "--baseline-offset",
	"baseline": "--baseline-range", "baseline.start": "--baseline-range", "baseline.end": "--baseline-range",
	"candidate": "--candidate-range", "candidate.start": "--candidate-range", "candidate.end": "--candidate-range",
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
	if c.deployment != "" {
		return c.waitDeployment(ctx, client, stdout, stderr)
	}
	req, err := c.request()
	if err != nil {
		return gateUsage, err
	}
	plan, err := gate.NewPlan(req, c.cfg, c.now())
	if err != nil {
		return gateUsage, cliRequestError(err)
	}
	rb, err := c.prepareRollback(ctx, stderr)
	if err != nil {
		return gateUsage, err
	}
	opts := gate.Options{API: v1.NewAPI(client), Progress: stderr, DryRun: c.dryRun, Now: c.now}
	if rb != nil {
		opts.Rollback = rb
	}
	rep, err := gate.Run(ctx, plan, opts)
	if err != nil && (rep == nil || rep.Verdict != regress.Regression) {
		// No verdict; a failed rollback after a regression still reports.
		return exitFor(err), cliRequestError(err)
	}
	if werr := gate.Write(stdout, c.format, rep); werr != nil {
		return gateUsage, werr
	}
	if path := os.Getenv("GITHUB_STEP_SUMMARY"); path != "" {
		if err := appendSummary(path, rep); err != nil {
			fmt.Fprintf(stderr, "spanwatch gate: writing GITHUB_STEP_SUMMARY: %v\n", err)
		}
	}
	if rep.Rollback != "" {
		fmt.Fprintf(stderr, "rollback: %s\n", rep.Rollback)
	}
	return c.exitCode(rep.Verdict), err
}

// exitCode maps a verdict to the exit code, with --on-inconclusive.
func (c *gateCmd) exitCode(v regress.Verdict) int {
	switch v {
	case regress.Regression:
		return gateRegression
	case regress.Inconclusive:
		switch c.cfg.OnInconclusive {
		case gate.OnInconclusivePass:
			return gatePass
		case gate.OnInconclusiveFail:
			return gateRegression
		default:
			return gateInconclusive
		}
	}
	return gatePass
}

// cliRequestError names the flag behind a request error.
func cliRequestError(err error) error {
	var re *gate.RequestError
	if !errors.As(err, &re) {
		return err
	}
	if f, ok := flagOf[re.Field]; ok {
		return usageError{fmt.Errorf("%s: %w", f, re.Err)}
	}
	return usageError{err}
}

func exitFor(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue), gate.IsRequestError(err):
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
