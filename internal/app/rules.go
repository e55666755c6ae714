package app

import (
	"errors"
	"fmt"
	"net/http"

	prules "github.com/prometheus/prometheus/rules"

	"github.com/spanwatch/spanwatch/internal/api"
	"github.com/spanwatch/spanwatch/internal/query"
	"github.com/spanwatch/spanwatch/internal/rules"
)

// newRules builds the rules manager over the embedded TSDB or the remote
// store, and mounts /api/v1/rules, /api/v1/alerts and POST /-/reload.
func (a *App) newRules(mux *http.ServeMux) error {
	rc := a.opts.Config.Rules
	pack := rc.Builtin
	pack.Enabled = pack.Enabled && a.opts.RulesBuiltin
	if len(a.opts.RuleFiles) == 0 && !pack.Enabled {
		a.mountNoRules(mux, "no rule files are configured and the built-in pack is off")
		return nil
	}
	ro := rules.Options{
		Files:              a.opts.RuleFiles,
		Builtin:            pack,
		Names:              a.agg.Names(),
		EvaluationInterval: rc.EvaluationInterval,
		ExternalLabels:     rc.ExternalLabels,
		ExternalURL:        a.opts.ExternalURL,
		AlertmanagerURLs:   a.opts.AlertmanagerURLs,
		WebhookURLs:        a.opts.WebhookURLs,
		Logger:             a.logger.With("component", "rules"),
		Registerer:         a.reg,
	}
	switch {
	case a.opts.QueryURL != "":
		f, err := query.RemoteFunc(query.Remote{URL: a.opts.QueryURL, Headers: a.opts.QueryHeaders})
		if err != nil {
			return err
		}
		ro.QueryFunc = prules.QueryFunc(f)
	case a.store != nil:
		ro.QueryFunc = prules.EngineQueryFunc(a.engine.Engine, a.store.Queryable())
		ro.Appendable = a.store.Appendable()
		ro.Queryable = a.store.Queryable()
		ro.Parser = a.engine.Parser
	default:
		a.logger.Warn("rules are not evaluated: --storage.mode=none without --query.url leaves nothing to query")
		a.mountNoRules(mux, "rules are not evaluated: --storage.mode=none without --query.url leaves nothing to query")
		return nil
	}
	m, err := rules.New(ro)
	if err != nil {
		return err
	}
	a.rules = m
	rh, ah := api.RulesHandlers(m, a.logger.With("component", "api"))
	mux.Handle(api.Prefix+"rules", rh)
	mux.Handle(api.Prefix+"alerts", ah)
	a.mountReload(mux, func(w http.ResponseWriter, _ *http.Request) {
		if err := a.Reload(); err != nil {
			http.Error(w, fmt.Sprintf("failed to reload: %v", err), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("reloaded\n"))
	})
	return nil
}

// mountReload serves POST /-/reload with reload when --web.enable-lifecycle
// is set, and otherwise answers 403 saying so, as Prometheus does.
func (a *App) mountReload(mux *http.ServeMux, reload http.HandlerFunc) {
	if !a.opts.EnableLifecycle {
		reload = func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "lifecycle API is not enabled: start spanwatch with --web.enable-lifecycle", http.StatusForbidden)
		}
	}
	mux.HandleFunc("POST /-/reload", reload)
	mux.HandleFunc("PUT /-/reload", reload)
}

// mountNoRules serves /api/v1/rules and /api/v1/alerts empty, as Prometheus
// does without rules (Grafana asks for them), and POST /-/reload with the
// reason there is nothing to reload.
func (a *App) mountNoRules(mux *http.ServeMux, why string) {
	rh, ah := api.RulesHandlers(noRules{}, a.logger.With("component", "api"))
	mux.Handle(api.Prefix+"rules", rh)
	mux.Handle(api.Prefix+"alerts", ah)
	a.mountReload(mux, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("nothing to reload: " + why + "\n"))
	})
}

// noRules is the rules source of a spanwatch without rules.
type noRules struct{}

func (noRules) RuleGroups() []*prules.Group           { return nil }
func (noRules) AlertingRules() []*prules.AlertingRule { return nil }

// Reload reloads the rule files; on error the previous rules stay in force.
func (a *App) Reload() error {
	if a.rules == nil {
		return errors.New("no rules configured")
	}
	return a.rules.Reload()
}
