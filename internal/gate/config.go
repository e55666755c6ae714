package gate

import (
	"errors"
	"time"

	"github.com/prometheus/common/model"

	"github.com/spanwatch/spanwatch/internal/field"
	"github.com/spanwatch/spanwatch/internal/query"
	"github.com/spanwatch/spanwatch/internal/regress"
)

// Config is the `gate:` section of the config file: the defaults of
// `spanwatch gate` and of POST /api/v1/compare, which flags and request
// fields override. The thresholds are regress.Thresholds, inline: one list
// of numbers for the file, the flags, validation and the docs.
type Config struct {
	// URL is the Prometheus-compatible API to read from.
	URL string `yaml:"url"`
	// Headers are sent with every query, e.g. X-Scope-OrgID for a Mimir
	// tenant.
	Headers map[string]string `yaml:"headers"`
	// Window is the analysis window of each arm.
	Window time.Duration `yaml:"window"`
	// MaxWait bounds waiting for enough data.
	MaxWait time.Duration `yaml:"max_wait"`
	// PollInterval is the time between looks.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Thresholds of the decision rule (alpha, min_ratio, candidate_share, …).
	regress.Thresholds `yaml:",inline"`
	// OnInconclusive maps an inconclusive verdict: inconclusive (exit 2),
	// pass (0) or fail (1).
	OnInconclusive string `yaml:"on_inconclusive"`
}

// On-inconclusive choices.
const (
	OnInconclusiveInconclusive = "inconclusive"
	OnInconclusivePass         = "pass"
	OnInconclusiveFail         = "fail"
)

// DefaultConfig returns the gate's defaults.
func DefaultConfig() Config {
	return Config{
		Window: 5 * time.Minute, MaxWait: 15 * time.Minute, PollInterval: 15 * time.Second,
		Thresholds: regress.DefaultThresholds(), OnInconclusive: OnInconclusiveInconclusive,
	}
}

// Validate checks the section; errors are *field.Error naming the key.
func (c *Config) Validate() error {
	switch {
	case c.Window < time.Minute:
		return field.Errorf("window", "must be at least 1m, got %s", model.Duration(c.Window))
	case c.MaxWait < 0:
		return field.Errorf("max_wait", "must not be negative, got %s", c.MaxWait)
	case c.PollInterval < time.Second:
		return field.Errorf("poll_interval", "must be at least 1s, got %s", c.PollInterval)
	}
	if err := c.Thresholds.Validate(); err != nil {
		var fe *field.Error
		if errors.As(err, &fe) {
			return fe
		}
		return err
	}
	for name := range c.Headers {
		if err := query.CheckHeader(name); err != nil {
			return field.Errorf("headers."+name, "%v", err)
		}
	}
	switch c.OnInconclusive {
	case OnInconclusiveInconclusive, OnInconclusivePass, OnInconclusiveFail:
	default:
		return field.Errorf("on_inconclusive", "must be inconclusive, pass or fail, got %q", c.OnInconclusive)
	}
	return nil
}
