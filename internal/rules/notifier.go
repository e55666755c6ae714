package rules

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commonconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	dtg "github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
)

type (
	targetgroup     = dtg.Group
	histogramT      = histogram.Histogram
	floatHistogramT = histogram.FloatHistogram
)

// newNotifier builds Prometheus's notifier for static Alertmanager URLs.
func newNotifier(urls []string, external map[string]string, logger *slog.Logger, reg prometheus.Registerer) (*notifier.Manager, error) {
	n := notifier.NewManager(&notifier.Options{
		QueueCapacity:   10000,
		DrainOnShutdown: true,
		Registerer:      reg,
	}, model.UTF8Validation, logger)
	cfg := &config.Config{GlobalConfig: config.DefaultGlobalConfig}
	cfg.GlobalConfig.ExternalLabels = labels.FromMap(external)
	for _, s := range urls {
		u, err := parseURL(s)
		if err != nil {
			return nil, fmt.Errorf("alertmanager URL %w", err)
		}
		am := config.DefaultAlertmanagerConfig
		am.Scheme = u.Scheme
		am.PathPrefix = u.Path
		am.Timeout = model.Duration(10 * time.Second)
		if u.User != nil {
			pw, _ := u.User.Password()
			am.HTTPClientConfig.BasicAuth = &commonconfig.BasicAuth{Username: u.User.Username(), Password: commonconfig.Secret(pw)}
		}
		am.ServiceDiscoveryConfigs = discovery.Configs{discovery.StaticConfig{{Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(hostPort(u.Host, u.Scheme))}}}}}
		amc := am
		cfg.AlertingConfig.AlertmanagerConfigs = append(cfg.AlertingConfig.AlertmanagerConfigs, &amc)
	}
	if err := n.ApplyConfig(cfg); err != nil {
		return nil, fmt.Errorf("alertmanager configuration: %w", err)
	}
	return n, nil
}

func hostPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if scheme == "https" {
		return net.JoinHostPort(host, "443")
	}
	return net.JoinHostPort(host, "80")
}

// startNotifier runs the notifier and hands it the static targets.
func (m *Manager) startNotifier() {
	go func() {
		m.notifier.Run(m.tsets)
		close(m.done)
	}()
	groups := map[string][]*targetgroup{}
	cfgs := m.opts.AlertmanagerURLs
	for i, s := range cfgs {
		u, _ := parseURL(s)
		key := fmt.Sprintf("config-%d", i)
		groups[key] = []*targetgroup{{Source: key, Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(hostPort(u.Host, u.Scheme))}}}}
	}
	m.tsets <- groups
}

func (m *Manager) stopNotifier() {
	if m.notifier == nil || m.tsets == nil {
		return
	}
	m.notifier.Stop()
	close(m.tsets)
	<-m.done
}
