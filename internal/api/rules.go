package api

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
)

// RulesSource is what /api/v1/rules and /api/v1/alerts read: the rules
// manager in force.
type RulesSource interface {
	RuleGroups() []*rules.Group
	AlertingRules() []*rules.AlertingRule
}

// RulesHandlers returns the handlers of /api/v1/rules and /api/v1/alerts,
// in Prometheus's response shape (Grafana reads them). They stand alone so
// that they also serve when the query API is proxied to a remote store.
func RulesHandlers(src RulesSource, logger *slog.Logger) (rulesHandler, alertsHandler http.Handler) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &API{logger: logger}
	return a.wrap(func(r *http.Request) apiResult { return rulesResult(src, r) }),
		a.wrap(func(*http.Request) apiResult { return alertsResult(src) })
}

type apiAlert struct {
	Labels          labels.Labels `json:"labels"`
	Annotations     labels.Labels `json:"annotations"`
	State           string        `json:"state"`
	ActiveAt        *time.Time    `json:"activeAt,omitempty"`
	KeepFiringSince *time.Time    `json:"keepFiringSince,omitempty"`
	Value           string        `json:"value"`
}

type apiRuleGroup struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	Rules          []any     `json:"rules"`
	Interval       float64   `json:"interval"`
	Limit          int       `json:"limit"`
	EvaluationTime float64   `json:"evaluationTime"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

type apiAlertingRule struct {
	State          string        `json:"state"`
	Name           string        `json:"name"`
	Query          string        `json:"query"`
	Duration       float64       `json:"duration"`
	KeepFiringFor  float64       `json:"keepFiringFor"`
	Labels         labels.Labels `json:"labels"`
	Annotations    labels.Labels `json:"annotations"`
	Alerts         []apiAlert    `json:"alerts"`
	Health         string        `json:"health"`
	LastError      string        `json:"lastError,omitempty"`
	EvaluationTime float64       `json:"evaluationTime"`
	LastEvaluation time.Time     `json:"lastEvaluation"`
	Type           string        `json:"type"`
}

type apiRecordingRule struct {
	Name           string        `json:"name"`
	Query          string        `json:"query"`
	Labels         labels.Labels `json:"labels"`
	Health         string        `json:"health"`
	LastError      string        `json:"lastError,omitempty"`
	EvaluationTime float64       `json:"evaluationTime"`
	LastEvaluation time.Time     `json:"lastEvaluation"`
	Type           string        `json:"type"`
}

func alertsOf(ar *rules.AlertingRule) []apiAlert {
	out := []apiAlert{}
	for _, al := range ar.ActiveAlerts() {
		a := apiAlert{
			Labels: al.Labels, Annotations: al.Annotations, State: al.State.String(),
			Value: strconv.FormatFloat(al.Value, 'e', -1, 64),
		}
		at := al.ActiveAt
		a.ActiveAt = &at
		if !al.KeepFiringSince.IsZero() {
			k := al.KeepFiringSince
			a.KeepFiringSince = &k
		}
		out = append(out, a)
	}
	return out
}

func rulesResult(src RulesSource, r *http.Request) apiResult {
	typ := r.FormValue("type")
	switch typ {
	case "", "alert", "record":
	default:
		return apiResult{err: badData(errBadRuleType)}
	}
	names := map[string]bool{}
	for _, n := range r.Form["rule_name[]"] {
		names[n] = true
	}
	groups := []apiRuleGroup{}
	for _, g := range src.RuleGroups() {
		ag := apiRuleGroup{Name: g.Name(), File: g.File(), Interval: g.Interval().Seconds(), Limit: g.Limit(),
			EvaluationTime: g.GetEvaluationTime().Seconds(), LastEvaluation: g.GetLastEvaluation(), Rules: []any{}}
		for _, rl := range g.Rules() {
			if len(names) > 0 && !names[rl.Name()] {
				continue
			}
			lastErr := ""
			if err := rl.LastError(); err != nil {
				lastErr = err.Error()
			}
			switch rule := rl.(type) {
			case *rules.AlertingRule:
				if typ == "record" {
					continue
				}
				ag.Rules = append(ag.Rules, apiAlertingRule{
					State: rule.State().String(), Name: rule.Name(), Query: rule.Query().String(),
					Duration: rule.HoldDuration().Seconds(), KeepFiringFor: rule.KeepFiringFor().Seconds(),
					Labels: rule.Labels(), Annotations: rule.Annotations(), Alerts: alertsOf(rule),
					Health: string(rule.Health()), LastError: lastErr, EvaluationTime: rule.GetEvaluationDuration().Seconds(),
					LastEvaluation: rule.GetEvaluationTimestamp(), Type: "alerting",
				})
			case *rules.RecordingRule:
				if typ == "alert" {
					continue
				}
				ag.Rules = append(ag.Rules, apiRecordingRule{
					Name: rule.Name(), Query: rule.Query().String(), Labels: rule.Labels(), Health: string(rule.Health()),
					LastError: lastErr, EvaluationTime: rule.GetEvaluationDuration().Seconds(),
					LastEvaluation: rule.GetEvaluationTimestamp(), Type: "recording",
				})
			}
		}
		if len(ag.Rules) > 0 || (typ == "" && len(names) == 0) {
			groups = append(groups, ag)
		}
	}
	return apiResult{data: map[string]any{"groups": groups}}
}

func alertsResult(src RulesSource) apiResult {
	alerts := []apiAlert{}
	for _, ar := range src.AlertingRules() {
		alerts = append(alerts, alertsOf(ar)...)
	}
	return apiResult{data: map[string]any{"alerts": alerts}}
}
