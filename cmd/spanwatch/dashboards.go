package main

import (
	"io"

	"github.com/alecthomas/kingpin/v2"

	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/dashboards"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

type dashboardsCmd struct {
	configFile   string
	naming       string
	namespace    string
	namingSet    bool
	namespaceSet bool
}

func newDashboardsCmd(a *kingpin.Application) *dashboardsCmd {
	c := &dashboardsCmd{}
	d := a.Command("dashboards", "Generate dashboards for spanwatch's span metrics.")
	g := d.Command("grafana", "Print a Grafana dashboard (JSON, for Dashboards > Import) for the configured naming: rate, errors, P50/P95/P99, heatmap, per-version split.")
	g.Flag("config.file", "Configuration file (its spanmetrics and exposition sections give the names; --naming and --namespace override).").PlaceHolder("<path>").StringVar(&c.configFile)
	g.Flag("naming", "Metric naming: otel (traces_span_metrics_*) or legacy (calls_total, latency_*, label operation).").
		Default(spanmetrics.NamingOTel).IsSetByUser(&c.namingSet).EnumVar(&c.naming, spanmetrics.NamingOTel, spanmetrics.NamingLegacy)
	g.Flag("namespace", "Exporter namespace prefixed to metric names (jaeger_spm with --naming=legacy gives the Jaeger SPM recipe's names).").
		PlaceHolder("<prefix>").IsSetByUser(&c.namespaceSet).StringVar(&c.namespace)
	return c
}

// grafana writes the Grafana dashboard.
func (c *dashboardsCmd) grafana(stdout io.Writer) error {
	f := config.Default()
	if c.configFile != "" {
		var err error
		if f, err = config.Load(c.configFile); err != nil {
			return usageError{err}
		}
	}
	if c.configFile == "" || c.namingSet {
		f.Exposition.Naming = c.naming
	}
	if c.configFile == "" || c.namespaceSet {
		f.Exposition.Namespace = c.namespace
	}
	out, err := dashboards.GrafanaJSON(dashboards.DefaultOptions(spanmetrics.NewNames(f.SpanMetrics, f.Exposition)))
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
