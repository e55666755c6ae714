// Package web runs the HTTP servers of the web and exposition ports and
// provides the handlers no other package owns: the health endpoints
// (/healthz, /readyz, /-/healthy, /-/ready), the embedded UI and the
// comparison endpoint. The query API, the rules endpoints and the metrics
// handlers come from the packages that own them; internal/app mounts them
// beside these.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	toolkit "github.com/prometheus/exporter-toolkit/web"
)

// Readiness records whether spanwatch is ready to serve, and why not: it
// is ready when no condition (lifecycle, storage, …) reports a problem.
type Readiness struct {
	mu      sync.Mutex
	reasons map[string]string
}

const lifecycle = "lifecycle"

// NewReadiness returns a Readiness that is not ready, with reason.
func NewReadiness(reason string) *Readiness {
	r := &Readiness{reasons: map[string]string{}}
	r.SetNotReady(reason)
	return r
}

// SetReady marks the lifecycle ready (started).
func (r *Readiness) SetReady() { r.Set(lifecycle, nil) }

// SetNotReady marks the lifecycle not ready, with a reason shown by /readyz.
func (r *Readiness) SetNotReady(reason string) { r.Set(lifecycle, errors.New(reason)) }

// Set records the state of one condition: err nil means fine.
func (r *Readiness) Set(condition string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.reasons, condition)
		return
	}
	if condition == lifecycle {
		r.reasons[condition] = err.Error()
		return
	}
	r.reasons[condition] = condition + ": " + err.Error()
}

// Ready returns whether spanwatch is ready and, if not, why.
func (r *Readiness) Ready() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reasons) == 0 {
		return true, ""
	}
	var out []string
	for _, why := range r.reasons {
		out = append(out, why)
	}
	slices.Sort(out)
	return false, strings.Join(out, "; ")
}

// Server is an HTTP server with graceful shutdown.
type Server struct {
	name       string
	srv        *http.Server
	configFile string
	lis        net.Listener
	logger     *slog.Logger
	errc       chan error
}

// ServerOptions configure a Server beyond its address and handler.
type ServerOptions struct {
	// ConfigFile is a web configuration file in the Prometheus
	// exporter-toolkit format (TLS, client certificates, basic
	// authentication with bcrypt hashes, response headers), as Prometheus
	// and node_exporter read it with --web.config.file. It is re-read on
	// every request and TLS handshake, so changes apply without a restart.
	// Empty serves plain HTTP without authentication.
	ConfigFile string
}

// NewServer returns a server for handler on addr; Start binds it. A
// configuration file in opts is checked here (its syntax, the bcrypt
// hashes, and that the certificate and key load), so that a bad file is an
// error before any port is bound.
func NewServer(name, addr string, handler http.Handler, logger *slog.Logger, opts ServerOptions) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := ValidateConfigFile(opts.ConfigFile); err != nil {
		return nil, err
	}
	return &Server{
		name:       name,
		configFile: opts.ConfigFile,
		logger:     logger,
		errc:       make(chan error, 1),
		srv: &http.Server{
			Addr:              addr,
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		},
	}, nil
}

// ValidateConfigFile checks a web configuration file as NewServer does;
// an empty path is valid (no file). The error names the file.
func ValidateConfigFile(path string) error {
	if path == "" {
		return nil
	}
	if err := toolkit.Validate(path); err != nil {
		return fmt.Errorf("web config file %s: %w", path, err)
	}
	return nil
}

// Start binds the listener and serves in the background.
func (s *Server) Start() error {
	lis, err := net.Listen("tcp", s.srv.Addr)
	if err != nil {
		return fmt.Errorf("%s listen on %s: %w", s.name, s.srv.Addr, err)
	}
	s.lis = lis
	serve := s.srv.Serve
	if s.configFile != "" {
		// exporter-toolkit wraps the handler with basic authentication and
		// the configured headers, and serves TLS when the file asks for it.
		file := s.configFile
		serve = func(l net.Listener) error {
			return toolkit.Serve(l, s.srv, &toolkit.FlagConfig{WebConfigFile: &file}, s.logger)
		}
	}
	go func() {
		if err := serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("%s server: %w", s.name, err)
		}
	}()
	s.logger.Info("listening", "server", s.name, "address", lis.Addr().String(), "web_config_file", s.configFile)
	return nil
}

// Addr is the bound address, or nil before Start.
func (s *Server) Addr() net.Addr {
	if s.lis == nil {
		return nil
	}
	return s.lis.Addr()
}

// Err reports a server that stopped unexpectedly.
func (s *Server) Err() <-chan error { return s.errc }

// Shutdown stops the server gracefully; safe without Start.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.lis == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

// HealthHandlers registers /healthz, /-/healthy, /readyz and /-/ready.
func HealthHandlers(mux *http.ServeMux, ready *Readiness) {
	healthy := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "spanwatch is Healthy.")
	}
	readyz := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ok, why := ready.Ready(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "spanwatch is not ready: %s\n", why)
			return
		}
		_, _ = fmt.Fprintln(w, "spanwatch is Ready.")
	}
	mux.HandleFunc("GET /healthz", healthy)
	mux.HandleFunc("GET /-/healthy", healthy)
	mux.HandleFunc("GET /readyz", readyz)
	mux.HandleFunc("GET /-/ready", readyz)
}
