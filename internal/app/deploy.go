package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	prules "github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/spanwatch/spanwatch/internal/api"
	"github.com/spanwatch/spanwatch/internal/deploy"
	"github.com/spanwatch/spanwatch/internal/gate"
	"github.com/spanwatch/spanwatch/internal/query"
	"github.com/spanwatch/spanwatch/internal/regress"
)

// DeploymentInfoMetric is the series recording each deployment event.
const DeploymentInfoMetric = "spanwatch_deployment_info"

// alertTTL is how long a deployment alert stays firing after its verdict.
const alertTTL = time.Hour

// alertSender delivers alerts through the rules' notifier.
type alertSender interface {
	Send(generator string, alerts ...*prules.Alert)
}

// watcher finds deployments in the version series and runs the gate for
// each until its verdict.
type watcher struct {
	cfg        deploy.Config
	gateCfg    gate.Config
	flush      time.Duration
	reader     *deploy.Reader
	api        v1.API
	now        func() time.Time
	logger     *slog.Logger
	dir        string // durable record; empty: none (rebuilt from the store)
	appendable storage.AppendableV2
	alerts     alertSender
	external   string

	mu sync.Mutex // guards tr and the events it holds
	tr *deploy.Tracker

	// Looks of the running comparisons follow the polls: each waits for
	// the next poll's generation.
	rmu     sync.Mutex
	cond    *sync.Cond
	gen     uint64
	busy    int
	running map[string]bool
	stopped bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	pollMu  sync.Mutex

	verdicts *prometheus.GaugeVec
	polls    *prometheus.CounterVec
}

// errRolloutEnded ends a same-window comparison when the previous version
// stops serving: the verdict is then sought before/after.
var errRolloutEnded = errors.New("the previous version stopped serving")

func newWatcher(w *watcher, reg prometheus.Registerer) (*watcher, error) {
	w.tr = deploy.NewTracker(deploy.TrackerOptions{
		MaxVersions: w.cfg.MaxVersions, MaxEvents: w.cfg.MaxEvents, FlushInterval: w.flush, Lookback: w.cfg.Lookback,
	})
	if w.dir != "" {
		if err := w.tr.Load(w.dir); err != nil {
			return nil, fmt.Errorf("loading the deployment record: %w", err)
		}
	}
	w.cond = sync.NewCond(&w.rmu)
	w.running = map[string]bool{}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.verdicts = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "spanwatch_deploy_verdict",
		Help: "Verdict of each deployment: 1 for its current verdict (pending, pass, regression, inconclusive).",
	}, []string{"service", "version", "verdict"})
	w.polls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spanwatch_deploy_polls_total",
		Help: "Looks at the version series, by result.",
	}, []string{"result"})
	reg.MustRegister(w.verdicts, w.polls)
	for _, e := range w.tr.Events() {
		w.setVerdictMetric(e)
	}
	return w, nil
}

// run polls every poll interval until Stop.
func (w *watcher) run() {
	w.wg.Go(func() {
		t := time.NewTicker(w.cfg.PollInterval)
		defer t.Stop()
		for {
			if err := w.Poll(w.ctx); err != nil && w.ctx.Err() == nil {
				w.logger.Warn("looking for deployments failed", "err", err)
			}
			select {
			case <-w.ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// stop ends polling and every comparison, and writes the record.
func (w *watcher) stop() {
	w.cancel()
	w.rmu.Lock()
	w.stopped = true
	w.cond.Broadcast()
	w.rmu.Unlock()
	w.wg.Wait()
	w.save()
}

// Poll takes one look: finds new events, follows the watched ones, and
// lets every running comparison take its look; it returns once they have.
func (w *watcher) Poll(ctx context.Context) error {
	w.pollMu.Lock()
	defer w.pollMu.Unlock()
	if err := w.detect(ctx); err != nil {
		w.polls.WithLabelValues("error").Inc()
		return err
	}
	w.polls.WithLabelValues("success").Inc()
	w.save()
	w.mu.Lock()
	var start []*deploy.Event
	for _, e := range w.tr.Events() {
		if e.State == deploy.StateWatching {
			start = append(start, e)
		}
	}
	w.mu.Unlock()
	w.rmu.Lock()
	defer w.rmu.Unlock()
	if w.stopped {
		return nil
	}
	for _, e := range start {
		if !w.running[e.ID] {
			w.running[e.ID] = true
			w.busy++
			w.wg.Go(func() { w.judge(e) })
		}
	}
	w.gen++
	w.cond.Broadcast()
	for w.busy > 0 && !w.stopped {
		w.cond.Wait()
	}
	return nil
}

// detect reads the version series and applies the look.
func (w *watcher) detect(ctx context.Context) error {
	now := w.now()
	act, err := w.reader.Activity(ctx, now, w.cfg.ActivityWindow)
	if err != nil {
		return err
	}
	w.mu.Lock()
	unknown := w.tr.Unknown(act)
	w.mu.Unlock()
	fs, err := w.reader.FirstSeen(ctx, unknown, now, w.cfg.Lookback)
	if err != nil {
		return err
	}
	w.mu.Lock()
	found := w.tr.Observe(deploy.Look{Now: now, Activity: act, FirstSeen: fs})
	var watching []*deploy.Event // the rollout not ended: the shape unfolds
	for _, e := range w.tr.Events() {
		if e.EndAt.IsZero() && (e.State == deploy.StateWatching || now.Before(e.Deadline(w.cfg.MaxWait))) {
			watching = append(watching, e)
		}
	}
	w.mu.Unlock()
	for _, e := range found {
		w.logger.Info("deployment found", "service", e.Service, "namespace", e.Namespace, "version", e.Version,
			"previous_version", e.PreviousVersion, "first_seen", e.FirstSeen, "rebuilt", e.Rebuilt)
		w.setVerdictMetric(e)
		w.appendInfo(e, e.FirstSeen)
	}
	window := w.gateCfg.Window
	for _, e := range watching {
		w.mu.Lock()
		g, prev, fseen, r0 := e.Group, e.PreviousVersion, e.FirstSeen, e.BaselineRate
		w.mu.Unlock()
		if prev == "" {
			continue
		}
		if r0 < 0 {
			n, err := w.reader.Requests(ctx, g, prev, fseen, window)
			if err != nil {
				return err
			}
			w.mu.Lock()
			e.BaselineRate = n / window.Seconds()
			w.mu.Unlock()
		}
		var prevReq float64
		for _, a := range act {
			if a.Group == g && a.Version == prev {
				prevReq += a.Requests
			}
		}
		w.mu.Lock()
		ended := e.Progress(now, prevReq, w.cfg.ActivityWindow)
		end, cutoff := e.EndAt, e.SwitchCutoff(w.flush)
		w.mu.Unlock()
		if ended {
			late, err := w.reader.Requests(ctx, g, prev, end, end.Sub(cutoff))
			if err != nil {
				return err
			}
			w.mu.Lock()
			e.SettleShape(late)
			w.mu.Unlock()
			w.logger.Info("rollout ended", "service", e.Service, "version", e.Version, "shape", e.Shape)
		}
		w.appendInfo(e, now)
	}
	return nil
}

// waitLook waits for the next poll (a comparison's Sleep).
func (w *watcher) waitLook(ctx context.Context) error {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	my := w.gen
	w.busy--
	w.cond.Broadcast()
	for w.gen == my && !w.stopped && ctx.Err() == nil {
		w.cond.Wait()
	}
	w.busy++
	if w.stopped {
		return context.Canceled
	}
	return ctx.Err()
}

// judge runs the gate for one event until its verdict.
func (w *watcher) judge(e *deploy.Event) {
	defer func() {
		w.rmu.Lock()
		w.busy--
		delete(w.running, e.ID)
		w.cond.Broadcast()
		w.rmu.Unlock()
	}()
	for w.ctx.Err() == nil {
		w.mu.Lock()
		ev := *e
		w.mu.Unlock()
		if ev.State != deploy.StateWatching {
			return
		}
		win := ev.VerdictWindows(w.gateCfg.Window)
		if win.NoPrevious {
			w.decide(e, deploy.VerdictInconclusive, "", fmt.Sprintf("no previous version of %s served before %s: nothing to compare with; a version that replaced nothing is not a pass", ev.Service, ev.Version), nil)
			return
		}
		now := w.now()
		req := gate.Request{
			Service:   ev.Service,
			Baseline:  gate.ArmRequest{Matchers: deploy.Matchers(ev.Group, win.BaselineVersion)},
			Candidate: gate.ArmRequest{Matchers: deploy.Matchers(ev.Group, win.CandidateVersion)},
		}
		if win.Mode == deploy.ModeBeforeAfter {
			req.Baseline.Start = win.BaselineStart.UTC().Format(time.RFC3339Nano)
			req.Baseline.End = win.BaselineEnd.UTC().Format(time.RFC3339Nano)
			req.Candidate.Start = win.CandidateStart.UTC().Format(time.RFC3339Nano)
		}
		w.mu.Lock()
		e.Compared = &deploy.Compared{
			Baseline:  deploy.ComparedArm{Matchers: req.Baseline.Matchers, Start: req.Baseline.Start, End: req.Baseline.End},
			Candidate: deploy.ComparedArm{Matchers: req.Candidate.Matchers, Start: req.Candidate.Start, End: req.Candidate.End},
		}
		w.mu.Unlock()
		defaults := w.gateCfg
		defaults.URL, defaults.Headers = "", nil
		defaults.PollInterval = w.cfg.PollInterval
		defaults.MaxWait = max(0, ev.Deadline(w.cfg.MaxWait).Sub(now))
		plan, err := gate.NewPlan(&req, defaults, now)
		if err != nil {
			w.decide(e, deploy.VerdictInconclusive, win.Mode, fmt.Sprintf("the comparison cannot run: %v", err), nil)
			return
		}
		sleep := func(ctx context.Context, _ time.Duration) error {
			if err := w.waitLook(ctx); err != nil {
				return err
			}
			w.mu.Lock()
			ended := !e.EndAt.IsZero()
			w.mu.Unlock()
			if win.Mode == deploy.ModeSameWindow && ended {
				return errRolloutEnded
			}
			return nil
		}
		rep, err := gate.Run(w.ctx, plan, gate.Options{API: w.api, Now: w.now, Sleep: sleep})
		switch {
		case errors.Is(err, errRolloutEnded):
			w.interim(e, win.Mode, rep)
			continue
		case w.ctx.Err() != nil:
			return
		case err != nil:
			if !w.now().Before(ev.Deadline(w.cfg.MaxWait)) {
				w.decide(e, deploy.VerdictInconclusive, win.Mode, fmt.Sprintf("the comparison failed until max_wait: %v", err), nil)
				return
			}
			w.logger.Warn("deployment comparison failed; retrying at the next poll", "service", ev.Service, "version", ev.Version, "err", err)
			if w.waitLook(w.ctx) != nil {
				return
			}
			continue
		}
		verdict := rep.Verdict.String()
		reason := reasonOf(rep)
		if rep.Verdict == regress.Pass && (rep.BaselineData == nil || rep.BaselineData.Service.Requests <= 0) {
			verdict, reason = deploy.VerdictInconclusive, fmt.Sprintf("the previous version %s served no requests in the baseline: never a pass", ev.PreviousVersion)
		}
		if win.Mode == deploy.ModeBeforeAfter {
			reason = "time-shifted (the previous version before its traffic fell, the new one after the rollout): " + reason
		}
		w.decide(e, verdict, win.Mode, reason, rep)
		return
	}
}

func reasonOf(rep *gate.Report) string {
	if rep.Result.Service.Reason != "" && rep.Verdict != regress.Pass {
		return rep.Result.Service.Reason
	}
	if rep.Result.Reason != "" {
		return rep.Result.Reason
	}
	return rep.Result.Service.Reason
}

// interim keeps the latest report of a comparison that did not decide.
func (w *watcher) interim(e *deploy.Event, mode string, rep *gate.Report) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e.Mode = mode
	if rep != nil {
		e.Report = reportJSON(rep)
		e.Reason = "watching: " + reasonOf(rep)
	}
}

func reportJSON(rep *gate.Report) json.RawMessage {
	b, err := json.Marshal(gate.JSON(rep))
	if err != nil {
		return nil
	}
	return b
}

// decide records a verdict, sets the metric and the info series, alerts
// and writes the record.
func (w *watcher) decide(e *deploy.Event, verdict, mode, reason string, rep *gate.Report) {
	now := w.now()
	w.mu.Lock()
	e.State, e.Verdict, e.Mode, e.Reason, e.DecidedAt = deploy.StateDecided, verdict, mode, reason, now
	if rep != nil {
		e.Report = reportJSON(rep)
	}
	ev := *e
	w.mu.Unlock()
	w.logger.Info("deployment verdict", "service", ev.Service, "version", ev.Version, "shape", ev.Shape, "verdict", verdict, "reason", reason)
	w.setVerdictMetric(&ev)
	w.appendInfo(&ev, now)
	w.alert(&ev)
	w.save()
}

func (w *watcher) setVerdictMetric(e *deploy.Event) {
	for _, v := range []string{deploy.VerdictPending, deploy.VerdictPass, deploy.VerdictRegression, deploy.VerdictInconclusive} {
		if v != e.Verdict {
			w.verdicts.DeleteLabelValues(e.Service, e.Version, v)
		}
	}
	w.verdicts.WithLabelValues(e.Service, e.Version, e.Verdict).Set(1)
}

// appendInfo writes spanwatch_deployment_info at t (embedded TSDB only).
func (w *watcher) appendInfo(e *deploy.Event, t time.Time) {
	if w.appendable == nil {
		return
	}
	w.mu.Lock()
	ls := labels.FromStrings("__name__", DeploymentInfoMetric, "service", e.Service, "namespace", e.Namespace,
		"version", e.Version, "previous_version", e.PreviousVersion, "shape", string(e.Shape))
	w.mu.Unlock()
	app := w.appendable.AppenderV2(context.Background())
	if _, err := app.Append(0, ls, 0, t.UnixMilli(), 1, nil, nil, storage.AOptions{}); err != nil {
		_ = app.Rollback()
		w.logger.Debug("appending deployment info failed", "err", err)
		return
	}
	if err := app.Commit(); err != nil {
		w.logger.Debug("committing deployment info failed", "err", err)
	}
}

// alert sends DeployRegression (and DeployInconclusive when configured).
func (w *watcher) alert(e *deploy.Event) {
	if w.alerts == nil {
		return
	}
	name, severity := "", ""
	switch {
	case e.Verdict == deploy.VerdictRegression:
		name, severity = "DeployRegression", "critical"
	case e.Verdict == deploy.VerdictInconclusive && w.cfg.AlertOnInconclusive:
		name, severity = "DeployInconclusive", "info"
	default:
		return
	}
	link := strings.TrimSuffix(w.external, "/") + "/deployments/" + e.ID
	a := &prules.Alert{
		State: prules.StateFiring,
		Labels: labels.FromStrings("alertname", name, "service", e.Service, "namespace", e.Namespace,
			"version", e.Version, "previous_version", e.PreviousVersion, "severity", severity),
		Annotations: labels.FromStrings(
			"summary", fmt.Sprintf("%s %s (%s, replacing %s): %s", e.Service, e.Version, e.Shape, e.PreviousVersion, e.Verdict),
			"description", e.Reason,
			"link", link),
		ActiveAt: e.DecidedAt, FiredAt: e.DecidedAt, ValidUntil: e.DecidedAt.Add(alertTTL),
	}
	w.alerts.Send(link, a)
}

func (w *watcher) save() {
	if w.dir == "" {
		return
	}
	w.mu.Lock()
	err := w.tr.Save(w.dir)
	w.mu.Unlock()
	if err != nil {
		w.logger.Warn("writing the deployment record failed", "err", err)
	}
}

// ListDeployments serves GET /api/v1/deployments: newest first.
func (w *watcher) ListDeployments(service string, since time.Time, limit int) ([]any, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	evs := w.tr.Events()
	out := []any{}
	for i := len(evs) - 1; i >= 0 && len(out) < limit; i-- {
		e := evs[i]
		if (service != "" && e.Service != service) || e.FirstSeen.Before(since) {
			continue
		}
		c := *e
		c.PreviousVersions = slices.Clone(e.PreviousVersions)
		out = append(out, &c)
	}
	return out, w.tr.Unversioned(since)
}

// Deployment serves GET /api/v1/deployments/{id}.
func (w *watcher) Deployment(id string) (any, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.tr.Event(id)
	if e == nil {
		return nil, false
	}
	c := *e
	return &c, true
}

// newDeploy builds the deployment watcher over the same query function as
// the rules (embedded TSDB or --query.url) and mounts its API.
func (a *App) newDeploy(mux *http.ServeMux) error {
	cfg := a.opts.Config.Deploy
	logger := a.logger.With("component", "deploy")
	off := ""
	var qf deploy.QueryFunc
	switch {
	case !cfg.Enabled:
		off = "deploy.enabled is false"
	case a.opts.QueryURL != "":
		f, err := query.RemoteFunc(query.Remote{URL: a.opts.QueryURL, Headers: a.opts.QueryHeaders})
		if err != nil {
			return err
		}
		qf = deploy.QueryFunc(f)
	case a.store != nil:
		qf = deploy.QueryFunc(prules.EngineQueryFunc(a.engine.Engine, a.store.Queryable()))
	default:
		off = "--storage.mode=none without --query.url leaves nothing to query"
	}
	if qf == nil {
		list, one := api.DeploymentsHandlers(nil, off, logger)
		mux.Handle(api.DeploymentsPath, list)
		mux.Handle(api.DeploymentsPath+"/{id}", one)
		return nil
	}
	w := &watcher{
		cfg: cfg, gateCfg: a.opts.Config.Gate, flush: a.agg.FlushInterval(),
		reader: &deploy.Reader{Query: qf, Calls: a.agg.Names().Calls, FlushInterval: a.agg.FlushInterval()},
		api:    query.HandlerAPI(mux), now: a.now, logger: logger, external: a.opts.ExternalURL,
	}
	if a.store != nil {
		w.dir = a.opts.Storage.Path
		w.appendable = a.store.Appendable()
	}
	if a.rules != nil {
		w.alerts = a.rules
	}
	w, err := newWatcher(w, a.reg)
	if err != nil {
		return err
	}
	a.deploy = w
	list, one := api.DeploymentsHandlers(w, "", logger)
	mux.Handle(api.DeploymentsPath, list)
	mux.Handle(api.DeploymentsPath+"/{id}", one)
	return nil
}

// PollDeployments takes one look for deployments and lets every watched
// deployment's comparison take its look; with Options.DeployManualPolls it
// is the only way looks happen.
func (a *App) PollDeployments(ctx context.Context) error {
	if a.deploy == nil {
		return errors.New("deployment detection is off")
	}
	return a.deploy.Poll(ctx)
}
