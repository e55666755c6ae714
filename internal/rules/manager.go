package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql/parser"
	prules "github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/strutil"

	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// BuiltinFile is the name under which the built-in pack appears in
// /api/v1/rules.
const BuiltinFile = "spanwatch:builtin"

// Options configure the rules component.
type Options struct {
	// Files are rule-file paths or globs.
	Files []string
	// Builtin configures the built-in pack; Builtin.Enabled turns it on.
	Builtin PackConfig
	// Names are the span-metric names the built-in pack queries.
	Names *spanmetrics.Names
	// EvaluationInterval is the default interval of groups without one.
	EvaluationInterval time.Duration
	// ExternalLabels are added to alerts.
	ExternalLabels map[string]string
	// ExternalURL is where alerts link back to.
	ExternalURL string
	// AlertmanagerURLs receive alerts (Alertmanager API v2).
	AlertmanagerURLs []string
	// WebhookURLs receive the Alertmanager webhook payload.
	WebhookURLs []string
	// QueryFunc evaluates expressions (local engine or remote store).
	QueryFunc prules.QueryFunc
	// Appendable stores recording-rule results and ALERTS/ALERTS_FOR_STATE;
	// nil discards them (remote query mode).
	Appendable storage.AppendableV2
	// Queryable restores the state of `for` after a restart; may be nil.
	Queryable storage.Queryable
	// Parser parses expressions.
	Parser parser.Parser
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the rules manager's and notifier's metrics.
	Registerer prometheus.Registerer
}

// Manager runs the rules.
type Manager struct {
	opts     Options
	logger   *slog.Logger
	m        *prules.Manager
	notifier *notifier.Manager
	webhook  *webhookSender
	tsets    chan map[string][]*targetgroup
	pack     []byte

	mu       sync.Mutex
	lastErr  error
	lastLoad time.Time
	started  bool // notifications started
	running  bool // evaluation loop started
	stopped  bool
	done     chan struct{}

	reloads      *prometheus.CounterVec
	lastSuccess  prometheus.Gauge
	configLoaded prometheus.Gauge
}

// New builds the manager and loads the rules once; a rule file that does
// not load is an error here (at start-up), unlike on reload.
func New(o Options) (*Manager, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.EvaluationInterval <= 0 {
		o.EvaluationInterval = 30 * time.Second
	}
	if o.Parser == nil {
		o.Parser = parser.NewParser(parser.Options{})
	}
	m := &Manager{opts: o, logger: o.Logger, done: make(chan struct{})}
	if o.Builtin.Enabled {
		pack, err := Pack(o.Names, o.Builtin)
		if err != nil {
			return nil, fmt.Errorf("built-in rule pack: %w", err)
		}
		m.pack = pack
	}
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spanwatch_rules_reloads_total",
		Help: "Rule reloads, by result.",
	}, []string{"result"})
	m.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "spanwatch_rules_last_reload_success_timestamp_seconds",
		Help: "When the rules were last loaded successfully.",
	})
	m.configLoaded = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "spanwatch_rules_last_reload_successful",
		Help: "Whether the last reload of the rules succeeded (the previous rules stay in force if not).",
	})
	reg := o.Registerer
	if reg != nil {
		reg.MustRegister(m.reloads, m.lastSuccess, m.configLoaded)
	}
	app := o.Appendable
	if app == nil {
		app = discardAppendable{}
	}
	if len(o.AlertmanagerURLs) > 0 {
		n, err := newNotifier(o.AlertmanagerURLs, o.ExternalLabels, o.Logger.With("component", "notifier"), reg)
		if err != nil {
			return nil, err
		}
		m.notifier = n
	}
	if len(o.WebhookURLs) > 0 {
		w, err := newWebhookSender(o.WebhookURLs, o.ExternalURL, o.ExternalLabels, o.Logger.With("component", "webhook"), reg)
		if err != nil {
			return nil, err
		}
		m.webhook = w
	}
	m.m = prules.NewManager(&prules.ManagerOptions{
		QueryFunc:       o.QueryFunc,
		NotifyFunc:      m.notify,
		Context:         context.Background(),
		AppendableV2:    app,
		Queryable:       o.Queryable,
		Logger:          o.Logger,
		Registerer:      reg,
		OutageTolerance: time.Hour,
		ForGracePeriod:  10 * time.Minute,
		ResendDelay:     time.Minute,
		GroupLoader:     loader{m: m},
		Parser:          o.Parser,
	})
	if err := m.Reload(); err != nil {
		return nil, err
	}
	return m, nil
}

// loader loads rule files from disk and the built-in pack from memory.
type loader struct{ m *Manager }

func (l loader) Load(identifier string, ignoreUnknownFields bool, scheme model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	if identifier == BuiltinFile {
		return rulefmt.Parse(l.m.pack, ignoreUnknownFields, scheme, l.m.opts.Parser, l.m.logger)
	}
	return rulefmt.ParseFile(identifier, ignoreUnknownFields, scheme, l.m.opts.Parser, l.m.logger)
}

func (l loader) Parse(q string) (parser.Expr, error) { return l.m.opts.Parser.ParseExpr(q) }

// files expands the globs; a pattern that matches nothing is an error (a
// typo would otherwise drop every rule silently).
func (m *Manager) files() ([]string, error) {
	var out []string
	for _, pat := range m.opts.Files {
		matches, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("rule file pattern %q: %w", pat, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("rule file pattern %q matches no file", pat)
		}
		out = append(out, matches...)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if m.pack != nil {
		out = append(out, BuiltinFile)
	}
	return out, nil
}

// Check validates every rule file without applying anything.
func (m *Manager) Check() ([]string, error) {
	files, err := m.files()
	if err != nil {
		return nil, err
	}
	l := loader{m: m}
	var errs []error
	for _, f := range files {
		if _, es := l.Load(f, false, model.UTF8Validation); len(es) > 0 {
			errs = append(errs, es...)
		}
	}
	return files, errors.Join(errs...)
}

// Reload validates the rule files and applies them. When anything fails to
// load, the rules in force stay, and the error is returned, logged,
// counted and kept for LastError.
func (m *Manager) Reload() error {
	files, err := m.Check()
	if err == nil {
		err = m.m.Update(m.opts.EvaluationInterval, files, labels.FromMap(m.opts.ExternalLabels), m.opts.ExternalURL, nil)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastLoad = time.Now()
	if err != nil {
		m.lastErr = err
		m.reloads.WithLabelValues("failure").Inc()
		m.configLoaded.Set(0)
		m.logger.Error("loading rules failed; the previous rules stay in force", "err", err)
		return fmt.Errorf("loading rules: %w", err)
	}
	m.lastErr = nil
	m.reloads.WithLabelValues("success").Inc()
	m.configLoaded.Set(1)
	m.lastSuccess.SetToCurrentTime()
	m.logger.Info("rules loaded", "files", files)
	return nil
}

// LastError is the error of the last reload, or nil.
func (m *Manager) LastError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

// Start begins notifying and evaluating on the wall clock.
func (m *Manager) Start() {
	m.StartNotifications()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running || m.stopped {
		return
	}
	m.running = true
	go m.m.Run()
}

// StartNotifications starts delivering alerts without the evaluation loop:
// with EvalAt, rules can then be evaluated at chosen times (backfills,
// simulations).
func (m *Manager) StartNotifications() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.stopped {
		return
	}
	m.started = true
	if m.notifier != nil {
		m.tsets = make(chan map[string][]*targetgroup)
		m.startNotifier()
	}
	if m.webhook != nil {
		m.webhook.start()
	}
}

// EvalAt evaluates every group once at t, in order, sending alerts and
// writing ALERTS/ALERTS_FOR_STATE as the evaluation loop would. (The loop
// first restores the state of `for` from storage; EvalAt starts from the
// state it has.)
func (m *Manager) EvalAt(ctx context.Context, t time.Time) {
	for _, g := range m.m.RuleGroups() {
		for _, r := range g.Rules() {
			if ar, ok := r.(*prules.AlertingRule); ok {
				ar.SetRestored(true)
			}
		}
		g.Eval(ctx, t)
	}
}

// Stop stops evaluation, then notifications (sending what is queued).
// Safe without Start and twice.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	m.stopped = true
	if !m.running {
		// Prometheus's Manager.Stop blocks forever unless Run was started,
		// and loaded groups wait for Run: start it so that both end.
		go m.m.Run()
	}
	m.m.Stop()
	if !m.started {
		return
	}
	m.stopNotifier()
	if m.webhook != nil {
		m.webhook.stop()
	}
}

// RuleGroups are the groups in force.
func (m *Manager) RuleGroups() []*prules.Group { return m.m.RuleGroups() }

// AlertingRules are the alerting rules in force.
func (m *Manager) AlertingRules() []*prules.AlertingRule { return m.m.AlertingRules() }

// notify hands alerts to Alertmanager and the webhooks.
func (m *Manager) notify(ctx context.Context, expr string, alerts ...*prules.Alert) {
	if m.notifier != nil {
		prules.SendAlerts(m.notifier, m.opts.ExternalURL)(ctx, expr, alerts...)
	}
	if m.webhook != nil {
		m.webhook.send(m.opts.ExternalURL+strutil.TableLinkForExpression(expr), alerts)
	}
}

// Send delivers alerts that no rule evaluates (deployment verdicts)
// through the same Alertmanager notifier and webhooks as the rules'
// alerts, with generator as each alert's link. An alert ends at its
// ValidUntil unless resolved. Before Start (or after Stop) nothing is sent.
func (m *Manager) Send(generator string, alerts ...*prules.Alert) {
	m.mu.Lock()
	live := m.started && !m.stopped
	m.mu.Unlock()
	if !live || len(alerts) == 0 {
		return
	}
	if m.notifier != nil {
		var out []*notifier.Alert
		for _, a := range alerts {
			na := &notifier.Alert{StartsAt: a.FiredAt, Labels: a.Labels, Annotations: a.Annotations, GeneratorURL: generator}
			if !a.ResolvedAt.IsZero() {
				na.EndsAt = a.ResolvedAt
			} else {
				na.EndsAt = a.ValidUntil
			}
			out = append(out, na)
		}
		m.notifier.Send(out...)
	}
	if m.webhook != nil {
		m.webhook.send(generator, alerts)
	}
}

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q: want an http:// or https:// URL", s)
	}
	return u, nil
}

// discardAppendable drops what rules write (remote query mode).
type discardAppendable struct{}

func (discardAppendable) AppenderV2(context.Context) storage.AppenderV2 { return discardAppender{} }

type discardAppender struct{}

func (discardAppender) Append(storage.SeriesRef, labels.Labels, int64, int64, float64, *histogramT, *floatHistogramT, storage.AOptions) (storage.SeriesRef, error) {
	return 0, nil
}
func (discardAppender) Commit() error   { return nil }
func (discardAppender) Rollback() error { return nil }
