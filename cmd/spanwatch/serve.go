package main

import (
	"context"
	"io"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/config"
)

type serveCmd struct {
	configFile string
	opts       app.Options
	maxRequest units.Base2Bytes
	logLevel   string
	logFormat  string
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
	cmd.Flag("web.listen-address", "Address of spanwatch's own /metrics, health endpoints and API.").
		Default(c.opts.WebAddress).StringVar(&c.opts.WebAddress)
	cmd.Flag("web.enable-pprof", "Serve Go profiling endpoints under /debug/pprof/ on the web address.").
		BoolVar(&c.opts.EnablePprof)
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
	c.opts.Config = config.Default()
	if c.configFile != "" {
		f, err := config.Load(c.configFile)
		if err != nil {
			return usageError{err}
		}
		c.opts.Config = f
		logger.Info("loaded configuration", "file", c.configFile)
	}
	a, err := app.New(c.opts)
	if err != nil {
		return usageError{err}
	}
	return a.Run(ctx)
}
