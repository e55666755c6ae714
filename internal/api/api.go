package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/spanwatch/spanwatch/internal/query"
)

// Prefix is the path under which Register mounts the API.
const Prefix = "/api/v1/"

// maxAnnotations bounds the warnings and the infos of one response, as in
// Prometheus.
const maxAnnotations = 10

// Options configure the API.
type Options struct {
	// Engine evaluates PromQL; its parser also serves format_query and
	// match[]. Required.
	Engine *query.Engine
	// Queryable is the storage queries, series and label lookups read.
	// Required.
	Queryable storage.Queryable
	// Metadata returns the metric metadata /metadata serves; nil serves none.
	Metadata func() []Metadata
	// BuildInfo is served by /status/buildinfo.
	BuildInfo BuildInfo
	// Now is the clock for a query's default evaluation time; nil means
	// time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
}

// Metadata describes one metric family, as /api/v1/metadata reports it.
type Metadata struct {
	// Metric is the metric family name, e.g. traces_span_metrics_calls_total
	// (a counter's family name keeps its _total suffix in Prometheus 3).
	Metric string
	// Type is a Prometheus metric type: counter, gauge, histogram, summary,
	// gaugehistogram, info, stateset or unknown.
	Type string
	// Help is the help text.
	Help string
	// Unit is the unit, e.g. "milliseconds"; may be empty.
	Unit string
}

// BuildInfo is the payload of /api/v1/status/buildinfo, with Prometheus's
// field names.
type BuildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Branch    string `json:"branch"`
	BuildUser string `json:"buildUser"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
}

// API serves the Prometheus-compatible HTTP API.
type API struct {
	engine      promql.QueryEngine
	parser      parser.Parser
	defaultOpts func() promql.QueryOpts
	queryable   storage.Queryable
	metadata    func() []Metadata
	buildInfo   BuildInfo
	now         func() time.Time
	logger      *slog.Logger
}

// Sentinel errors of New.
var (
	ErrNoEngine    = errors.New("api: no query engine")
	ErrNoQueryable = errors.New("api: no queryable")
)

// New returns an API over the engine and the queryable.
func New(opts Options) (*API, error) {
	if opts.Engine == nil || opts.Engine.Engine == nil {
		return nil, ErrNoEngine
	}
	if opts.Queryable == nil {
		return nil, ErrNoQueryable
	}
	a := &API{
		engine:      opts.Engine,
		parser:      opts.Engine.Parser,
		defaultOpts: opts.Engine.QueryOpts,
		queryable:   opts.Queryable,
		metadata:    opts.Metadata,
		buildInfo:   opts.BuildInfo,
		now:         opts.Now,
		logger:      opts.Logger,
	}
	if a.parser == nil {
		a.parser = parser.NewParser(parser.Options{})
	}
	if a.metadata == nil {
		a.metadata = func() []Metadata { return nil }
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// Register mounts the endpoints on mux under /api/v1/. Every endpoint
// accepts GET, HEAD and form-encoded POST (OPTIONS answers 204); other
// methods get 405. Any other path under /api/v1/ gets a 404 in the JSON
// envelope; more specific patterns registered on the same mux by others
// (say /api/v1/rules) take precedence over that catch-all.
func (a *API) Register(mux *http.ServeMux) {
	for path, f := range map[string]apiFunc{
		"query":               a.query,
		"query_range":         a.queryRange,
		"query_exemplars":     a.queryExemplars,
		"format_query":        a.formatQuery,
		"series":              a.series,
		"labels":              a.labelNames,
		"label/{name}/values": a.labelValues,
		"metadata":            a.metricMetadata,
		"status/buildinfo":    a.serveBuildInfo,
	} {
		mux.Handle(Prefix+path, a.wrap(f))
	}
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		a.respondError(w, r, &apiError{errorNotFound, fmt.Errorf("unknown API endpoint %s", r.URL.Path)})
	})
}

// apiResult is what an endpoint returns: data or an error, warnings, and a
// finalizer to run after the response is written (a query's Close returns
// the points the encoder reads).
type apiResult struct {
	data      any
	err       *apiError
	warnings  annotations.Annotations
	finalizer func()
}

type apiFunc func(r *http.Request) apiResult

func fail(err *apiError) apiResult { return apiResult{err: err} }

const allowedMethods = "GET, HEAD, POST, OPTIONS"

// maxFormBytes bounds a request body, so that a multipart form never spills
// to disk. net/http caps an urlencoded body at the same 10 MiB.
const maxFormBytes = 10 << 20

func (a *API) wrap(f apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodPost:
		case http.MethodOptions:
			w.Header().Set("Allow", allowedMethods)
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			w.Header().Set("Allow", allowedMethods)
			a.writeError(w, r, http.StatusMethodNotAllowed,
				&apiError{errorBadData, fmt.Errorf("method %s not allowed, use GET or POST", r.Method)})
			return
		}
		// Parameters of a form POST body (urlencoded or multipart, as
		// `curl -F` sends) join the URL's; other bodies are ignored.
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		err := r.ParseForm() // ParseMultipartForm hides its error behind ErrNotMultipart.
		if err == nil {
			if err = r.ParseMultipartForm(maxFormBytes); errors.Is(err, http.ErrNotMultipart) {
				err = nil
			}
		}
		if err != nil {
			a.respondError(w, r, badData(fmt.Errorf("error parsing form values: %w", err)))
			return
		}
		if r.MultipartForm != nil {
			defer func() { _ = r.MultipartForm.RemoveAll() }()
		}
		res := f(r)
		if res.finalizer != nil {
			defer res.finalizer()
		}
		if res.err != nil {
			a.respondError(w, r, res.err)
			return
		}
		a.respond(w, r, res.data, res.warnings)
	})
}

// response is Prometheus's JSON envelope.
type response struct {
	Status    string   `json:"status"`
	Data      any      `json:"data,omitempty"`
	ErrorType string   `json:"errorType,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Infos     []string `json:"infos,omitempty"`
}

func (a *API) respond(w http.ResponseWriter, r *http.Request, data any, warnings annotations.Annotations) {
	// The query text places annotations (line:column) in it.
	warn, info := warnings.AsStrings(r.FormValue("query"), maxAnnotations, maxAnnotations)
	b, err := json.Marshal(&response{Status: "success", Data: data, Warnings: warn, Infos: info})
	if err != nil {
		a.logger.Error("Encoding API response failed", "path", r.URL.Path, "err", err)
		a.respondError(w, r, &apiError{errorInternal, fmt.Errorf("encoding response: %w", err)})
		return
	}
	a.write(w, r, http.StatusOK, b)
}

func (a *API) respondError(w http.ResponseWriter, r *http.Request, apiErr *apiError) {
	if apiErr.typ == errorInternal {
		a.logger.Error("API request failed", "path", r.URL.Path, "err", apiErr.err)
	}
	a.writeError(w, r, apiErr.typ.statusCode(), apiErr)
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, code int, apiErr *apiError) {
	b, err := json.Marshal(&response{Status: "error", ErrorType: string(apiErr.typ), Error: apiErr.err.Error()})
	if err != nil { // Cannot happen: only strings.
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	a.write(w, r, code, b)
}

// write sends a JSON body, gzip-compressed when the client accepts it.
func (a *API) write(w http.ResponseWriter, r *http.Request, code int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Add("Vary", "Accept-Encoding")
	if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.WriteHeader(code)
		if _, err := w.Write(body); err != nil {
			a.logger.Debug("Writing API response failed", "path", r.URL.Path, "err", err)
		}
		return
	}
	h.Set("Content-Encoding", "gzip")
	h.Del("Content-Length")
	w.WriteHeader(code)
	if err := writeGzip(w, body); err != nil {
		a.logger.Debug("Writing API response failed", "path", r.URL.Path, "err", err)
	}
}
