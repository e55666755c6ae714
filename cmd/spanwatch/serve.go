package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/export"
	"github.com/spanwatch/spanwatch/internal/memlimit"
	"github.com/spanwatch/spanwatch/internal/query"
	"github.com/spanwatch/spanwatch/internal/web"
)

type serveCmd struct {
	configFile     string
	opts           app.Options
	maxRequest     units.Base2Bytes
	retention      model.Duration
	queryTimeout   model.Duration
	lookback       model.Duration
	remoteWriteURL []string
	queryHeaders   []string
	corsOrigin     string
	externalLabels map[string]string
	features       []string
	memoryLimit    string
	logLevel       string
	logFormat      string
}

func newServeCmd(a *kingpin.Application) *serveCmd {
	c := &serveCmd{opts: app.DefaultOptions()}
	cmd := a.Command("serve", "Receive OTLP traces and serve span metrics (the default command; the embedded defaults need no flags).").Default()
	cmd.Flag("config.file", "spanwatch configuration file (YAML). Without it the embedded defaults apply.").
		PlaceHolder("<path>").StringVar(&c.configFile)
	cmd.Flag("otlp.grpc.listen-address", "Address for OTLP/gRPC (TraceService/Export). Empty disables it.").
		Default(c.opts.Ingest.GRPCAddress).StringVar(&c.opts.Ingest.GRPCAddress)
	cmd.Flag("otlp.http.listen-address", "Address for OTLP/HTTP (POST /v1/traces). Empty disables it.").
		Default(c.opts.Ingest.HTTPAddress).StringVar(&c.opts.Ingest.HTTPAddress)
	cmd.Flag("otlp.max-request-bytes", "Largest OTLP request accepted, after decompression (e.g. 16MiB).").
		Default("16MiB").BytesVar(&c.maxRequest)
	cmd.Flag("metrics.listen-address", "Address of the span-metrics exposition (/metrics), the port Prometheus scrapes.").
		Default(c.opts.MetricsAddress).StringVar(&c.opts.MetricsAddress)
	cmd.Flag("metrics.created-timestamps", "Serve a new series' counts at once, with created timestamps (protobuf; OpenMetrics _created lines), instead of at 0 for one flush interval first. Only for a scraper that ingests them, e.g. Prometheus with --enable-feature=created-timestamp-zero-ingestion: any other loses the first spans of each new series.").
		BoolVar(&c.opts.MetricsCreatedTimestamps)
	cmd.Flag("web.listen-address", "Address of spanwatch's own /metrics, health endpoints and API.").
		Default(c.opts.WebAddress).StringVar(&c.opts.WebAddress)
	cmd.Flag("web.enable-pprof", "Serve Go profiling endpoints under /debug/pprof/ on the web address.").
		BoolVar(&c.opts.EnablePprof)
	cmd.Flag("storage.path", "Directory of the embedded TSDB.").
		Default(c.opts.Storage.Path).StringVar(&c.opts.Storage.Path)
	cmd.Flag("storage.retention", "How long samples are kept (e.g. 15d, 12h).").
		Default("15d").SetValue(&c.retention)
	cmd.Flag("storage.mode", "tsdb: store span metrics in the embedded TSDB; none: stateless (exposition and remote write only).").
		Default(app.StorageTSDB).EnumVar(&c.opts.StorageMode, app.StorageTSDB, app.StorageNone)
	cmd.Flag("memory.limit", "Memory budget: auto (the container's cgroup memory limit, none without one), none, or a size such as 2GiB. 90 % of it becomes the Go runtime's GOMEMLIMIT (unless that variable is set) and the hard limit, above which garbage collection is forced; above 80 % OTLP requests are refused with a retryable error (gRPC RESOURCE_EXHAUSTED, HTTP 429) and queries with 503 until memory falls.").
		Default(memlimit.Auto).StringVar(&c.memoryLimit)
	cmd.Flag("query.timeout", "Maximum time a query may take before it is aborted.").
		Default("2m").SetValue(&c.queryTimeout)
	cmd.Flag("query.max-samples", "Maximum number of samples a single query may load into memory.").
		Default("50000000").IntVar(&c.opts.Query.MaxSamples)
	cmd.Flag("query.max-concurrency", "Maximum number of queries executed concurrently; further queries wait for a slot, at most --query.timeout.").
		Default("20").IntVar(&c.opts.Query.MaxConcurrency)
	cmd.Flag("query.lookback-delta", "How far back an instant selector looks for the latest sample.").
		Default("5m").SetValue(&c.lookback)
	cmd.Flag("enable-feature", "Comma-separated PromQL feature flags, as in Prometheus: "+strings.Join(slices.Sorted(maps.Keys(query.FeatureNames)), ", ")+".").
		PlaceHolder("<name>").StringsVar(&c.features)
	cmd.Flag("query.url", "Read the query API from this Prometheus-compatible server (Prometheus, Mimir, Thanos) instead of the embedded TSDB.").
		PlaceHolder("<url>").StringVar(&c.opts.QueryURL)
	cmd.Flag("query.header", "HTTP header sent with every request to --query.url, as \"Name: value\" (repeatable), e.g. \"X-Scope-OrgID: team-a\" for a Mimir tenant.").
		PlaceHolder("<header>").StringsVar(&c.queryHeaders)
	cmd.Flag("remote-write.url", "Send every flush to this Prometheus remote-write endpoint (repeatable). Authentication and headers go in the config file's remote_write section.").
		PlaceHolder("<url>").StringsVar(&c.remoteWriteURL)
	cmd.Flag("remote-write.external-label", "Label added to every series sent by remote write, e.g. replica=$(POD_NAME), so replicas stay apart (repeatable; a config entry's own external_labels win).").
		PlaceHolder("<name>=<value>").StringMapVar(&c.externalLabels)
	cmd.Flag("rules.file", "Prometheus rule file to evaluate (repeatable; globs allowed). Reloaded on SIGHUP and POST /-/reload.").
		PlaceHolder("<path>").StringsVar(&c.opts.RuleFiles)
	cmd.Flag("rules.builtin", "Evaluate the built-in service-performance alert pack (see `spanwatch rules print`).").
		Default("true").BoolVar(&c.opts.RulesBuiltin)
	cmd.Flag("alertmanager.url", "Send alerts to this Alertmanager (API v2; repeatable).").
		PlaceHolder("<url>").StringsVar(&c.opts.AlertmanagerURLs)
	cmd.Flag("alert.webhook.url", "Post alerts to this URL in the Alertmanager webhook format (repeatable).").
		PlaceHolder("<url>").StringsVar(&c.opts.WebhookURLs)
	cmd.Flag("web.external-url", "URL under which spanwatch is reached, for links in alerts.").
		PlaceHolder("<url>").StringVar(&c.opts.ExternalURL)
	cmd.Flag("web.enable-lifecycle", "Serve POST /-/reload (off by default: without it no endpoint changes spanwatch's state).").BoolVar(&c.opts.EnableLifecycle)
	cmd.Flag("web.config.file", "Web configuration file (Prometheus exporter-toolkit format: TLS, client certificates, basic authentication) for both HTTP ports, the web address and the exposition.").
		PlaceHolder("<path>").StringVar(&c.opts.WebConfigFile)
	cmd.Flag("web.cors.origin", "Regular expression (fully anchored) of the origins whose browser scripts may call the API, e.g. 'https?://(grafana|tools)\\.example\\.com'. Empty (the default) sends no CORS headers.").
		PlaceHolder("<regex>").StringVar(&c.corsOrigin)
	cmd.Flag("log.level", "Only log messages with the given severity or above: debug, info, warn, error.").
		Default("info").EnumVar(&c.logLevel, "debug", "info", "warn", "error")
	cmd.Flag("log.format", "Output format of log messages: logfmt or json.").
		Default("logfmt").EnumVar(&c.logFormat, "logfmt", "json")
	return c
}

func (c *serveCmd) run(ctx context.Context, stderr io.Writer) error {
	logger, err := newLogger(stderr, c.logLevel, c.logFormat)
	if err != nil {
		return usageError{err}
	}
	c.opts.Logger = logger
	c.opts.Ingest.MaxRequestBytes = int(c.maxRequest)
	c.opts.Storage.Retention = time.Duration(c.retention)
	c.opts.Query.Timeout = time.Duration(c.queryTimeout)
	c.opts.Query.LookbackDelta = time.Duration(c.lookback)
	for _, list := range c.features {
		for _, name := range strings.Split(list, ",") {
			set, ok := query.FeatureNames[strings.TrimSpace(name)]
			if !ok {
				return usageError{fmt.Errorf("--enable-feature: unknown feature %q", name)}
			}
			set(&c.opts.Query.Features)
		}
	}
	if c.opts.QueryHeaders, err = query.ParseHeaders(c.queryHeaders); err != nil {
		return usageError{fmt.Errorf("--query.header: %w", err)}
	}
	if len(c.opts.QueryHeaders) > 0 && c.opts.QueryURL == "" {
		return usageError{errors.New("--query.header needs --query.url")}
	}
	if c.opts.CORSOrigin, err = web.CompileCORSOrigin(c.corsOrigin); err != nil {
		return usageError{fmt.Errorf("--web.cors.origin: %w", err)}
	}
	if c.opts.Memory.Limit, c.opts.Memory.Source, err = memlimit.Resolve(c.memoryLimit); err != nil {
		return usageError{fmt.Errorf("--memory.limit: %w", err)}
	}
	c.opts.Config = config.Default()
	if c.configFile != "" {
		f, err := config.Load(c.configFile)
		if err != nil {
			return usageError{err}
		}
		c.opts.Config = f
		logger.Info("loaded configuration", "file", c.configFile)
	}
	c.opts.RemoteWrite = remoteWriteConfigs(c.opts.Config, c.remoteWriteURL, c.externalLabels)
	a, err := app.New(c.opts)
	switch {
	case errors.Is(err, app.ErrStorage):
		return err // exit 1: the flags are fine, the disk is not
	case err != nil:
		return usageError{err}
	}
	if m := a.Memory(); m != nil {
		gml := m.SetGoMemLimit(os.Getenv, debug.SetMemoryLimit)
		logger.Info("memory limit set", "source", c.opts.Memory.Source, "limit", units.Base2Bytes(m.Limit()).String(),
			"soft_limit", units.Base2Bytes(m.SoftLimit()).String(), "gomemlimit", units.Base2Bytes(gml).String())
	} else {
		logger.Info("no memory limit (none given, no cgroup limit found): OTLP requests and queries are not refused under memory pressure")
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() {
		signal.Stop(hup)
		close(hup)
	}()
	go func() {
		for range hup {
			if err := a.Reload(); err != nil {
				logger.Error("reload failed", "err", err)
			}
		}
	}()
	return a.Run(ctx)
}

// remoteWriteConfigs merges the config file's remote_write section with the
// --remote-write.url flags (which get the defaults) and adds the
// --remote-write.external-label labels an entry does not set itself.
func remoteWriteConfigs(f *config.File, urls []string, external map[string]string) []export.RemoteWriteConfig {
	out := append([]export.RemoteWriteConfig(nil), f.RemoteWrite...)
	for _, u := range urls {
		rc := export.DefaultRemoteWriteConfig()
		rc.URL = u
		out = append(out, rc)
	}
	for i := range out {
		if len(external) == 0 {
			break
		}
		labels := maps.Clone(external)
		maps.Copy(labels, out[i].ExternalLabels)
		out[i].ExternalLabels = labels
	}
	return out
}
