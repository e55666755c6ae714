package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// DeploymentsPath lists deployments; DeploymentsPath + "/{id}" is one.
const DeploymentsPath = Prefix + "deployments"

// Limits of GET /api/v1/deployments.
const (
	defaultDeploymentsLimit = 100
	maxDeploymentsLimit     = 1000
)

// Deployments is what the deployment endpoints read; the server's
// deployment watcher implements it.
type Deployments interface {
	// ListDeployments returns the events of service (all when empty) first
	// seen at or after since, newest first, at most limit, and the services
	// that served without service.version since then (they get no events).
	ListDeployments(service string, since time.Time, limit int) (events []any, withoutVersion []string)
	// Deployment returns one event.
	Deployment(id string) (any, bool)
}

// deploymentsResponse is the envelope with the services that cannot have
// deployments beside the data.
type deploymentsResponse struct {
	Status                 string   `json:"status"`
	Data                   any      `json:"data"`
	ServicesWithoutVersion []string `json:"services_without_version"`
	Warnings               []string `json:"warnings,omitempty"`
}

// DeploymentsHandlers returns the handlers of GET /api/v1/deployments and
// GET /api/v1/deployments/{id}. d nil answers that detection is off, with
// why.
func DeploymentsHandlers(d Deployments, off string, logger *slog.Logger) (list, one http.Handler) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &API{logger: logger}
	get := func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", http.MethodGet)
				a.writeError(w, r, http.StatusMethodNotAllowed, badData(fmt.Errorf("method %s not allowed, use GET", r.Method)))
				return
			}
			if d == nil {
				a.respondError(w, r, &apiError{errorUnavailable, fmt.Errorf("deployment detection is off: %s", off)})
				return
			}
			h(w, r)
		})
	}
	list = get(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		since, err := parseTimeParam(r, "since", time.Time{})
		if err != nil {
			a.respondError(w, r, invalidParam(err, "since"))
			return
		}
		limit := defaultDeploymentsLimit
		if v := q.Get("limit"); v != "" {
			n, err := parseLimit(v)
			if err != nil {
				a.respondError(w, r, invalidParam(err, "limit"))
				return
			}
			if n > 0 {
				limit = min(n, maxDeploymentsLimit)
			}
		}
		evs, without := d.ListDeployments(q.Get("service"), since, limit)
		resp := deploymentsResponse{Status: "success", Data: evs, ServicesWithoutVersion: without}
		if resp.ServicesWithoutVersion == nil {
			resp.ServicesWithoutVersion = []string{}
		}
		for _, s := range without {
			resp.Warnings = append(resp.Warnings, fmt.Sprintf("service %q reports no service.version: no deployments are detected for it (set the service.version resource attribute)", s))
		}
		b, err := json.Marshal(&resp)
		if err != nil {
			a.respondError(w, r, &apiError{errorInternal, err})
			return
		}
		a.write(w, r, http.StatusOK, b)
	})
	one = get(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		e, ok := d.Deployment(id)
		if !ok {
			a.respondError(w, r, &apiError{errorNotFound, fmt.Errorf("no deployment %q", id)})
			return
		}
		a.respond(w, r, e, nil)
	})
	return list, one
}
