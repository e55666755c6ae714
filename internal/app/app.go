// Package app wires `spanwatch serve`: it constructs the components in
// order, runs them, flushes span-metric snapshots to every sink (exposition,
// embedded TSDB, remote write), and shuts down in the documented order:
// readiness off → stop receivers → final flush → drain remote write → close
// the HTTP servers → close the TSDB. It holds no logic of its own beyond that.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spanwatch/spanwatch/internal/api"
	"github.com/spanwatch/spanwatch/internal/buildinfo"
	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/export"
	"github.com/spanwatch/spanwatch/internal/gate"
	"github.com/spanwatch/spanwatch/internal/ingest"
	"github.com/spanwatch/spanwatch/internal/memlimit"
	"github.com/spanwatch/spanwatch/internal/query"
	"github.com/spanwatch/spanwatch/internal/rules"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
	"github.com/spanwatch/spanwatch/internal/store"
	"github.com/spanwatch/spanwatch/internal/web"
)

// Options configure `spanwatch serve`.
type Options struct {
	// Config is the loaded configuration file (config.Default() without one).
	Config *config.File
	// Ingest configures the OTLP receivers. Its TLS and authentication
	// come from Config's otlp section unless set here.
	Ingest ingest.Config
	// MetricsAddress serves the span-metrics exposition (/metrics).
	MetricsAddress string
	// MetricsCreatedTimestamps serves a new series' counts at once, with
	// created timestamps, to scrapers negotiating protobuf or OpenMetrics,
	// for scrapers that ingest them (see export.ExpositionOptions).
	MetricsCreatedTimestamps bool
	// WebAddress serves the Prometheus-compatible API (/api/v1/*), the UI,
	// spanwatch's own /metrics and the health endpoints (and POST /-/reload
	// with EnableLifecycle).
	WebAddress string
	// EnablePprof serves /debug/pprof/ on the web address.
	EnablePprof bool
	// StorageMode is "tsdb" (embedded TSDB) or "none" (stateless: exposition
	// and remote write only).
	StorageMode string
	// Storage configures the embedded TSDB.
	Storage store.Options
	// Query configures the PromQL engine.
	Query query.Options
	// Memory configures the memory limiter: its Limit (0: none) bounds
	// OTLP ingest and queries. Logger and Registerer are set by New.
	Memory memlimit.Options
	// QueryURL, when set, makes the query API read from that
	// Prometheus-compatible server instead of the embedded TSDB.
	QueryURL string
	// QueryHeaders are set on every request to QueryURL (a Mimir tenant,
	// an Authorization header).
	QueryHeaders map[string]string
	// RemoteWrite lists the remote-write destinations of every snapshot.
	RemoteWrite []export.RemoteWriteConfig
	// RuleFiles are Prometheus rule files (paths or globs).
	RuleFiles []string
	// RulesBuiltin runs the built-in service-performance pack.
	RulesBuiltin bool
	// AlertmanagerURLs receive alerts (API v2).
	AlertmanagerURLs []string
	// WebhookURLs receive the Alertmanager webhook payload.
	WebhookURLs []string
	// ExternalURL is the URL spanwatch is reached at, for alert links.
	ExternalURL string
	// EnableLifecycle serves POST /-/reload.
	EnableLifecycle bool
	// WebConfigFile is an exporter-toolkit web configuration file (TLS,
	// client certificates, basic authentication) applied to both HTTP
	// servers: the web address and the exposition. Empty serves plain HTTP.
	WebConfigFile string
	// CORSOrigin, when set, lets browser scripts of matching origins call
	// the API (/api/v1/*); nil sends no CORS headers.
	CORSOrigin *regexp.Regexp
	// ShutdownTimeout bounds each shutdown step.
	ShutdownTimeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// DeployManualPolls runs no deployment poll loop: PollDeployments
	// takes each look (simulations and tests with a simulated clock).
	DeployManualPolls bool
}

// DefaultOptions returns the defaults of `spanwatch serve`.
func DefaultOptions() Options {
	return Options{
		Config:          config.Default(),
		Ingest:          ingest.DefaultConfig(),
		StorageMode:     StorageTSDB,
		Storage:         store.DefaultOptions(),
		Query:           query.DefaultOptions(),
		RulesBuiltin:    true,
		MetricsAddress:  ":8889",
		WebAddress:      ":8890",
		ShutdownTimeout: 30 * time.Second,
	}
}

// Storage modes.
const (
	StorageTSDB = "tsdb"
	StorageNone = "none"
)

// sink receives every snapshot.
type sink interface {
	ConsumeSnapshot(*spanmetrics.Snapshot)
}

// App is a running spanwatch server.
type App struct {
	opts     Options
	logger   *slog.Logger
	now      func() time.Time
	reg      *prometheus.Registry
	ready    *web.Readiness
	mem      *memlimit.Limiter // nil: no memory limit
	agg      *spanmetrics.Aggregator
	expo     *export.Exposition
	receiver *ingest.Receiver
	store    *store.Store
	engine   *query.Engine
	remotes  []*export.RemoteWriter
	rules    *rules.Manager
	deploy   *watcher
	metrics  *web.Server
	web      *web.Server
	sinks    []sink

	stopMem   context.CancelFunc
	memDone   chan struct{}
	flushMu   sync.Mutex
	flushes   prometheus.Counter
	stopFlush chan struct{}
	flushDone chan struct{}
	shutdown  sync.Once
	errShut   error
}

// New constructs every component without starting any.
func New(opts Options) (*App, error) {
	if opts.Config == nil {
		opts.Config = config.Default()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	a := &App{opts: opts, logger: opts.Logger, now: opts.Now, reg: prometheus.NewRegistry()}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	// Before anything is opened: a bad file is a usage error.
	if err := web.ValidateConfigFile(opts.WebConfigFile); err != nil {
		return nil, err
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.reg.MustRegister(
		buildinfo.Collector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	a.flushes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "spanwatch_spanmetrics_flushes_total",
		Help: "Snapshots taken and handed to the sinks.",
	})
	a.reg.MustRegister(a.flushes)
	a.ready = web.NewReadiness("starting")

	mo := opts.Memory
	mo.Logger, mo.Registerer = a.logger.With("component", "memlimit"), a.reg
	var err error
	if a.mem, err = memlimit.New(mo); err != nil {
		return nil, err
	}
	a.agg, err = spanmetrics.New(opts.Config.SpanMetrics, spanmetrics.Options{
		Naming:     opts.Config.Exposition,
		Logger:     a.logger.With("component", "spanmetrics"),
		Registerer: a.reg,
		Now:        a.now,
	})
	if err != nil {
		return nil, err
	}
	a.expo = export.NewExposition(export.ExpositionOptions{CreatedTimestamps: opts.MetricsCreatedTimestamps, Registerer: a.reg})
	a.sinks = append(a.sinks, a.expo)
	if err := a.newStorage(); err != nil {
		return nil, err
	}
	ic := opts.Ingest
	if ic.GRPC == (ingest.ServerConfig{}) {
		ic.GRPC = opts.Config.OTLP.GRPC
	}
	if ic.HTTP == (ingest.ServerConfig{}) {
		ic.HTTP = opts.Config.OTLP.HTTP
	}
	if a.mem != nil && ic.Memory == nil {
		ic.Memory = a.mem
	}
	a.receiver, err = ingest.New(ic, a.agg, a.logger.With("component", "ingest"), a.reg)
	if err != nil {
		_ = a.closeStore()
		return nil, err
	}

	mmux := http.NewServeMux()
	mmux.Handle("/metrics", a.expo.Handler())
	so := web.ServerOptions{ConfigFile: opts.WebConfigFile}
	a.metrics, err = web.NewServer("span-metrics exposition", opts.MetricsAddress, mmux, a.logger.With("component", "exposition"), so)
	if err != nil {
		_ = a.closeStore()
		return nil, err
	}

	wmux := http.NewServeMux()
	wmux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg, EnableOpenMetrics: true}))
	web.HealthHandlers(wmux, a.ready)
	if err := a.registerAPI(wmux); err != nil {
		_ = a.closeStore()
		return nil, err
	}
	if err := a.newRules(wmux); err != nil {
		_ = a.closeStore()
		return nil, err
	}
	wmux.Handle(api.ComparePath, api.CompareHandler(&gate.Comparer{API: query.HandlerAPI(wmux), Defaults: opts.Config.Gate, Now: a.now},
		a.logger.With("component", "compare")))
	if err := a.newDeploy(wmux); err != nil {
		_ = a.closeStore()
		return nil, err
	}
	if opts.EnablePprof {
		wmux.HandleFunc("/debug/pprof/", pprof.Index)
		wmux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		wmux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		wmux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		wmux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	wmux.Handle("/", web.UIHandler()) // the web UI; longer patterns above win
	wh := web.SecurityHeaders(web.CORS(opts.CORSOrigin, api.Prefix, wmux))
	a.web, err = web.NewServer("web", opts.WebAddress, wh, a.logger.With("component", "web"), so)
	if err != nil {
		_ = a.closeStore()
		return nil, err
	}
	return a, nil
}

// Start binds every listener and starts the flush loop. On error, what was
// started is stopped again.
func (a *App) Start() error {
	if a.mem != nil {
		ctx, cancel := context.WithCancel(context.Background())
		a.stopMem, a.memDone = cancel, make(chan struct{})
		go func() { defer close(a.memDone); a.mem.Run(ctx) }()
		a.logger.Info("memory limit", "limit", a.mem.Limit(), "soft_limit", a.mem.SoftLimit(), "hard_limit", a.mem.HardLimit())
	}
	for _, s := range []*web.Server{a.web, a.metrics} {
		if err := s.Start(); err != nil {
			_ = a.Shutdown(context.Background())
			return err
		}
	}
	if err := a.receiver.Start(); err != nil {
		_ = a.Shutdown(context.Background())
		return err
	}
	for _, r := range a.remotes {
		r.Start()
	}
	if a.rules != nil {
		a.rules.Start()
	}
	if a.deploy != nil && !a.opts.DeployManualPolls {
		a.deploy.run()
	}
	a.stopFlush, a.flushDone = make(chan struct{}), make(chan struct{})
	go a.flushLoop()
	a.ready.SetReady()
	a.logger.Info("spanwatch is ready", "flush_interval", a.agg.FlushInterval())
	return nil
}

func (a *App) flushLoop() {
	defer close(a.flushDone)
	t := time.NewTicker(a.agg.FlushInterval())
	defer t.Stop()
	for {
		select {
		case <-t.C:
			a.Flush()
		case <-a.stopFlush:
			return
		}
	}
}

// Flush takes a snapshot and hands it to every sink.
func (a *App) Flush() *spanmetrics.Snapshot {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	snap := a.agg.Snapshot(a.now())
	for _, s := range a.sinks {
		s.ConsumeSnapshot(snap)
	}
	a.flushes.Inc()
	return snap
}

// Run starts the app, waits until ctx ends or a server fails, then shuts
// down.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(); err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
		a.logger.Info("shutting down", "reason", context.Cause(ctx))
	case runErr = <-a.receiver.Err():
	case runErr = <-a.metrics.Err():
	case runErr = <-a.web.Err():
	}
	if runErr != nil {
		a.logger.Error("server failed; shutting down", "err", runErr)
	}
	return errors.Join(runErr, a.Shutdown(context.Background()))
}

// Shutdown stops spanwatch in order: readiness off, receivers stopped
// (in-flight requests finish and are counted), a final flush so sinks hold
// every acknowledged span, then the HTTP servers. Safe to call twice.
func (a *App) Shutdown(ctx context.Context) error {
	a.shutdown.Do(func() {
		a.ready.SetNotReady("shutting down")
		step := func(name string, f func(context.Context) error) {
			c, cancel := context.WithTimeout(ctx, a.opts.ShutdownTimeout)
			defer cancel()
			if err := f(c); err != nil {
				a.errShut = errors.Join(a.errShut, fmt.Errorf("%s: %w", name, err))
			}
		}
		step("stop receivers", a.receiver.Shutdown)
		if a.stopFlush != nil {
			close(a.stopFlush)
			<-a.flushDone
			a.Flush()
		}
		if a.deploy != nil {
			a.deploy.stop()
		}
		if a.rules != nil {
			a.rules.Stop()
		}
		// Remote-write queues drain concurrently, so that one dead endpoint
		// does not delay the others.
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, r := range a.remotes {
			wg.Go(func() {
				c, cancel := context.WithTimeout(ctx, a.opts.ShutdownTimeout)
				defer cancel()
				if err := r.Shutdown(c); err != nil {
					mu.Lock()
					a.errShut = errors.Join(a.errShut, fmt.Errorf("drain remote write %s: %w", r.Name(), err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		step("stop exposition server", a.metrics.Shutdown)
		step("stop web server", a.web.Shutdown)
		if err := a.closeStore(); err != nil {
			a.errShut = errors.Join(a.errShut, fmt.Errorf("close storage: %w", err))
		}
		if a.stopMem != nil {
			a.stopMem()
			<-a.memDone
		}
		a.logger.Info("spanwatch stopped")
	})
	return a.errShut
}

// OTLPGRPCAddr is the bound OTLP/gRPC address.
func (a *App) OTLPGRPCAddr() net.Addr { return a.receiver.GRPCAddr() }

// OTLPHTTPAddr is the bound OTLP/HTTP address.
func (a *App) OTLPHTTPAddr() net.Addr { return a.receiver.HTTPAddr() }

// MetricsAddr is the bound exposition address.
func (a *App) MetricsAddr() net.Addr { return a.metrics.Addr() }

// WebAddr is the bound web address.
func (a *App) WebAddr() net.Addr { return a.web.Addr() }

// Memory is the memory limiter; nil without a limit.
func (a *App) Memory() *memlimit.Limiter { return a.mem }

// Registry is spanwatch's self-metrics registry.
func (a *App) Registry() *prometheus.Registry { return a.reg }
