package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/spanwatch/spanwatch/internal/api"
	"github.com/spanwatch/spanwatch/internal/buildinfo"
	"github.com/spanwatch/spanwatch/internal/export"
	"github.com/spanwatch/spanwatch/internal/query"
	"github.com/spanwatch/spanwatch/internal/store"
)

// ErrStorage marks a failure to open the embedded TSDB (an unwritable or
// locked --storage.path): a runtime failure, not a usage error.
var ErrStorage = errors.New("opening storage")

// newStorage opens the embedded TSDB (unless the mode is none) and creates
// the remote writers; both become sinks.
func (a *App) newStorage() error {
	switch a.opts.StorageMode {
	case StorageTSDB, "":
		so := a.opts.Storage
		so.Logger = a.logger.With("component", "store")
		so.Registerer = a.reg
		so.OnHealth = func(err error) { a.ready.Set("storage", err) }
		s, err := store.Open(so)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrStorage, err)
		}
		a.store = s
		a.sinks = append(a.sinks, s)
	case StorageNone:
	default:
		return fmt.Errorf("storage mode must be %q or %q, got %q", StorageTSDB, StorageNone, a.opts.StorageMode)
	}
	for _, rc := range a.opts.RemoteWrite {
		w, err := export.NewRemoteWriter(rc, a.logger.With("component", "remote-write"), a.reg)
		if err != nil {
			_ = a.closeStore()
			return err
		}
		a.remotes = append(a.remotes, w)
		a.sinks = append(a.sinks, w)
	}
	return nil
}

func (a *App) closeStore() error {
	if a.store == nil {
		return nil
	}
	return a.store.Close()
}

// registerAPI mounts the Prometheus-compatible API: over the embedded TSDB,
// proxied to --query.url, or answering that there is nothing to query.
func (a *App) registerAPI(mux *http.ServeMux) error {
	if a.opts.QueryURL != "" {
		u, err := url.Parse(a.opts.QueryURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("query URL %q is not an absolute URL", a.opts.QueryURL)
		}
		remote := query.Remote{URL: a.opts.QueryURL, Headers: a.opts.QueryHeaders}
		plog := a.logger.With("component", "query-proxy")
		proxy := &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(u)
				if u.User != nil {
					// The reverse proxy's transport does not send URL user
					// information by itself, unlike an http.Client.
					p, _ := u.User.Password()
					r.Out.SetBasicAuth(u.User.Username(), p)
				}
			},
			// The store's own CORS answer (Prometheus allows any origin by
			// default) must not stand in for --web.cors.origin.
			ModifyResponse: func(resp *http.Response) error {
				for k := range resp.Header {
					if strings.HasPrefix(k, "Access-Control-") {
						delete(resp.Header, k)
					}
				}
				return nil
			},
			Transport: remote.RoundTripper(nil),
			ErrorLog:  slog.NewLogLogger(plog.Handler(), slog.LevelWarn),
			// The default answers a failed round trip with an empty 502.
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				plog.Warn("query backend failed", "url", u.Redacted(), "path", r.URL.Path, "err", err)
				writeAPIError(w, http.StatusBadGateway, "unavailable", fmt.Sprintf("query backend %s failed: %v", u.Redacted(), redact(err, u)))
			},
		}
		// Only the read endpoints of the query API are forwarded, with the
		// --query.header credentials: the store's write and admin endpoints
		// (remote write, OTLP, TSDB admin) are not reachable through
		// spanwatch.
		for _, p := range proxiedPaths {
			mux.Handle(api.Prefix+p, proxy)
		}
		mux.HandleFunc(api.Prefix, func(w http.ResponseWriter, r *http.Request) {
			writeAPIError(w, http.StatusNotFound, "not_found",
				fmt.Sprintf("unknown API endpoint %s: with --query.url spanwatch forwards only the query API (%s)", r.URL.Path, strings.Join(proxiedPaths, ", ")))
		})
		a.logger.Info("query API reads from a remote store", "url", u.Redacted())
		return nil
	}
	qo := a.opts.Query
	qo.Logger = a.logger.With("component", "query")
	qo.Registerer = a.reg
	if a.mem != nil && qo.Memory == nil {
		qo.Memory = a.mem
	}
	e, err := query.NewEngine(qo)
	if err != nil {
		return err
	}
	a.engine = e
	if a.store == nil {
		mux.HandleFunc(api.Prefix, func(w http.ResponseWriter, _ *http.Request) {
			writeAPIError(w, http.StatusServiceUnavailable, "unavailable",
				"spanwatch runs with --storage.mode=none: there is nothing to query; set --query.url to read from a Prometheus-compatible store")
		})
		return nil
	}
	bi := buildinfo.Get()
	h, err := api.New(api.Options{
		Engine:    e,
		Queryable: a.store.Queryable(),
		Metadata:  a.metadata,
		BuildInfo: api.BuildInfo{Version: bi.Version, Revision: bi.Revision, GoVersion: bi.GoVersion},
		Now:       a.now,
		Logger:    a.logger.With("component", "api"),
	})
	if err != nil {
		return err
	}
	h.Register(mux)
	return nil
}

// proxiedPaths are the endpoints, under /api/v1/, that a spanwatch with
// --query.url forwards to the store: the ones its embedded API serves.
var proxiedPaths = []string{
	"query", "query_range", "query_exemplars", "format_query", "series", "labels",
	"label/{name}/values", "metadata", "status/buildinfo",
}

// redact removes the password of u from an error's text (a url.Error
// quotes the URL it failed on).
func redact(err error, u *url.URL) string {
	msg := err.Error()
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return msg
}

// writeAPIError answers in the Prometheus API's error envelope.
func writeAPIError(w http.ResponseWriter, code int, errorType, msg string) {
	b, _ := json.Marshal(struct { // strings only: cannot fail
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}{"error", errorType, msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// metadata describes the span-metric families for /api/v1/metadata.
func (a *App) metadata() []api.Metadata {
	n := a.agg.Names()
	unit := "milliseconds"
	if n.Unit == "s" {
		unit = "seconds"
	}
	return []api.Metadata{
		{Metric: n.Calls, Type: "counter", Help: "Number of spans, per service, span name, kind, status and dimensions."},
		{Metric: n.Duration, Type: "histogram", Help: "Span duration in " + unit + ".", Unit: unit},
		{Metric: n.TargetInfo, Type: "gauge", Help: "Target metadata: the resource attributes of each service instance."},
	}
}
