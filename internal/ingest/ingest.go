package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Consumer decodes and counts requests. ConsumeProto takes an
// ExportTraceServiceRequest in protobuf encoding, ConsumeJSON one in
// OTLP/JSON. Both return the number of spans accepted, or an error for
// undecodable input (including input nested too deep), in which case
// nothing was counted.
type Consumer interface {
	ConsumeProto(req []byte) (int, error)
	ConsumeJSON(req []byte) (int, error)
}

// Config configures the OTLP receivers.
type Config struct {
	// GRPCAddress is the OTLP/gRPC listen address; empty disables it.
	GRPCAddress string
	// HTTPAddress is the OTLP/HTTP listen address; empty disables it.
	HTTPAddress string
	// MaxRequestBytes bounds a request after decompression (the Collector's
	// max_request_body_size for HTTP and max_recv_msg_size_mib for gRPC).
	MaxRequestBytes int
	// GRPC sets TLS and authentication of the OTLP/gRPC receiver.
	GRPC ServerConfig
	// HTTP sets TLS and authentication of the OTLP/HTTP receiver.
	HTTP ServerConfig
	// Memory, when set, is asked before a request's body is read; a
	// refusal is answered with a retryable error (gRPC RESOURCE_EXHAUSTED
	// with RetryInfo, HTTP 429 with Retry-After) and nothing is counted.
	Memory Admitter
}

// Admitter decides whether a request may be read: the memory limiter.
type Admitter interface {
	// Admit returns an error while new work must wait.
	Admit(component string) error
	// RetryAfter is the delay suggested to a refused client.
	RetryAfter() time.Duration
}

// DefaultConfig returns the defaults: :4317, :4318, 16 MiB.
func DefaultConfig() Config {
	return Config{GRPCAddress: ":4317", HTTPAddress: ":4318", MaxRequestBytes: 16 << 20}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.MaxRequestBytes < 1024 {
		return fmt.Errorf("max request bytes must be at least 1024, got %d", c.MaxRequestBytes)
	}
	if err := c.GRPC.Validate(); err != nil {
		return fmt.Errorf("OTLP/gRPC receiver: %w", err)
	}
	if err := c.HTTP.Validate(); err != nil {
		return fmt.Errorf("OTLP/HTTP receiver: %w", err)
	}
	return nil
}

// Rejection reasons, the reason label of spanwatch_ingest_rejected_requests_total.
const (
	ReasonDecode          = "decode"
	ReasonTooLarge        = "too_large"
	ReasonContentType     = "content_type"
	ReasonContentEncoding = "content_encoding"
	ReasonMethod          = "method"
	ReasonRead            = "read"
	// ReasonUnauthenticated counts requests without valid credentials
	// (gRPC Unauthenticated, HTTP 401).
	ReasonUnauthenticated = "unauthenticated"
	ReasonOther           = "other"
	// ReasonInternal counts requests whose processing panicked: they are
	// answered with an internal error and logged with the stack, and the
	// process keeps serving.
	ReasonInternal = "internal"
	// ReasonMemoryLimit counts requests refused, unread, while spanwatch's
	// heap was above its soft memory limit (retryable).
	ReasonMemoryLimit = "memory_limit"
)

// errInternal is returned for a request whose processing panicked.
var errInternal = errors.New("internal error while processing the request (logged by spanwatch)")

// consume runs a consumer call, turning a panic into errInternal: one bad
// request must not take the receiver down with every client's data.
func (r *Receiver) consume(f func() (int, error)) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.logger.Error("panic while processing an OTLP request; rejected it", "panic", p, "stack", string(debug.Stack()))
			n, err = 0, errInternal
		}
	}()
	return f()
}

// Protocol label values.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http"
)

type metrics struct {
	requests *prometheus.CounterVec
	spans    *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spanwatch_ingest_requests_total",
			Help: "OTLP export requests accepted, by protocol and encoding.",
		}, []string{"protocol", "encoding"}),
		spans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spanwatch_ingest_spans_accepted_total",
			Help: "Spans acknowledged to clients (every one is counted in the span metrics).",
		}, []string{"protocol"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spanwatch_ingest_rejected_requests_total",
			Help: "OTLP export requests rejected, by protocol and reason.",
		}, []string{"protocol", "reason"}),
	}
	for _, p := range []string{ProtocolGRPC, ProtocolHTTP} {
		m.spans.WithLabelValues(p)
		for _, r := range []string{ReasonDecode, ReasonTooLarge, ReasonMemoryLimit} {
			m.rejected.WithLabelValues(p, r)
		}
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.spans, m.rejected)
	}
	return m
}

// Receiver runs the OTLP/gRPC and OTLP/HTTP servers.
type Receiver struct {
	cfg      Config
	consumer Consumer
	logger   *slog.Logger
	m        *metrics
	grpcTLS  *tlsSource     // nil: plain gRPC
	httpTLS  *tlsSource     // nil: plain HTTP
	grpcAuth *authenticator // nil: no authentication
	httpAuth *authenticator

	mu       sync.Mutex
	grpc     *grpcServer
	http     *http.Server
	grpcLis  net.Listener
	httpLis  net.Listener
	serveErr chan error
}

// New returns a Receiver; Start makes it listen. A nil logger discards logs
// and a nil registerer registers nothing.
func New(cfg Config, c Consumer, logger *slog.Logger, reg prometheus.Registerer) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("ingest: nil consumer")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{cfg: cfg, consumer: c, logger: logger, m: newMetrics(reg), serveErr: make(chan error, 2)}
	var err error
	if cfg.GRPCAddress != "" {
		if r.grpcTLS, r.grpcAuth, err = newSecurity("OTLP/gRPC", cfg.GRPC, []string{"h2"}, logger); err != nil {
			return nil, err
		}
		if r.grpcAuth != nil {
			r.m.rejected.WithLabelValues(ProtocolGRPC, ReasonUnauthenticated)
		}
	}
	if cfg.HTTPAddress != "" {
		if r.httpTLS, r.httpAuth, err = newSecurity("OTLP/HTTP", cfg.HTTP, []string{"h2", "http/1.1"}, logger); err != nil {
			return nil, err
		}
		if r.httpAuth != nil {
			r.m.rejected.WithLabelValues(ProtocolHTTP, ReasonUnauthenticated)
		}
	}
	return r, nil
}

// newSecurity loads a receiver's TLS files and credentials.
func newSecurity(name string, c ServerConfig, alpn []string, logger *slog.Logger) (*tlsSource, *authenticator, error) {
	var src *tlsSource
	if c.TLS != nil {
		var err error
		if src, err = newTLSSource(*c.TLS, alpn, logger.With("receiver", name)); err != nil {
			return nil, nil, fmt.Errorf("%s receiver TLS: %w", name, err)
		}
	}
	auth, err := newAuthenticator(c.Auth)
	if err != nil {
		return nil, nil, fmt.Errorf("%s receiver auth: %w", name, err)
	}
	if auth != nil && src == nil {
		logger.Warn("receiver requires credentials without TLS: they cross the network in clear text", "receiver", name)
	}
	return src, auth, nil
}

// Start binds the listeners and serves in the background. Errors while
// serving are reported by Err.
func (r *Receiver) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg.GRPCAddress != "" {
		lis, err := net.Listen("tcp", r.cfg.GRPCAddress)
		if err != nil {
			return fmt.Errorf("OTLP/gRPC listen on %s: %w", r.cfg.GRPCAddress, err)
		}
		r.grpcLis = lis
		r.grpc = newGRPCServer(r)
		srv := r.grpc.srv
		go func() {
			if err := srv.Serve(lis); err != nil {
				r.serveErr <- fmt.Errorf("OTLP/gRPC server: %w", err)
			}
		}()
		r.logger.Info("OTLP/gRPC receiver listening", "address", lis.Addr().String(), "tls", r.grpcTLS != nil, "auth", r.grpcAuth != nil)
	}
	if r.cfg.HTTPAddress != "" {
		lis, err := net.Listen("tcp", r.cfg.HTTPAddress)
		if err != nil {
			if r.grpc != nil {
				r.grpc.srv.Stop()
			}
			return fmt.Errorf("OTLP/HTTP listen on %s: %w", r.cfg.HTTPAddress, err)
		}
		if r.httpTLS != nil {
			lis = tls.NewListener(lis, r.httpTLS.serverConfig())
		}
		r.httpLis = lis
		mux := http.NewServeMux()
		mux.Handle("/v1/traces", r.httpHandler())
		r.http = &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(r.logger.Handler(), slog.LevelDebug),
		}
		srv := r.http
		go func() {
			if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.serveErr <- fmt.Errorf("OTLP/HTTP server: %w", err)
			}
		}()
		r.logger.Info("OTLP/HTTP receiver listening", "address", lis.Addr().String(), "tls", r.httpTLS != nil, "auth", r.httpAuth != nil)
	}
	return nil
}

// Err reports a server that stopped serving unexpectedly.
func (r *Receiver) Err() <-chan error { return r.serveErr }

// GRPCAddr returns the bound gRPC address, or nil.
func (r *Receiver) GRPCAddr() net.Addr {
	if r.grpcLis == nil {
		return nil
	}
	return r.grpcLis.Addr()
}

// HTTPAddr returns the bound HTTP address, or nil.
func (r *Receiver) HTTPAddr() net.Addr {
	if r.httpLis == nil {
		return nil
	}
	return r.httpLis.Addr()
}

// Shutdown stops accepting requests and waits for in-flight ones until ctx
// ends. It is safe without Start and when called twice.
func (r *Receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	if r.grpc != nil {
		stopped := make(chan struct{})
		go func() { r.grpc.srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			r.grpc.srv.Stop()
			<-stopped
		}
		r.grpc = nil
	}
	if r.http != nil {
		if err := r.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("OTLP/HTTP shutdown: %w", err))
		}
		r.http = nil
	}
	return errors.Join(errs...)
}
