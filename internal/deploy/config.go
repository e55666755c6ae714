package deploy

import (
	"time"

	"github.com/prometheus/common/model"

	"github.com/spanwatch/spanwatch/internal/field"
)

// Config is the `deploy:` section of the config file.
type Config struct {
	// Enabled turns automatic deployment detection and verdicts on.
	Enabled bool `yaml:"enabled"`
	// PollInterval is the time between looks at the version series; each
	// event's comparison takes one look per poll.
	PollInterval time.Duration `yaml:"poll_interval"`
	// MaxWait bounds how long an event is watched, from its first-seen time,
	// before its verdict is inconclusive.
	MaxWait time.Duration `yaml:"max_wait"`
	// ActivityWindow is the span over which a version counts as serving:
	// requests in the last ActivityWindow. At least two flush intervals.
	ActivityWindow time.Duration `yaml:"activity_window"`
	// Lookback is how far back the first appearance of a version is looked
	// for, and how far back events are rebuilt from stored data.
	Lookback time.Duration `yaml:"lookback"`
	// AlertOnInconclusive also sends DeployInconclusive (severity info).
	AlertOnInconclusive bool `yaml:"alert_on_inconclusive"`
	// MaxEvents bounds the events kept (the oldest decided ones go first).
	MaxEvents int `yaml:"max_events"`
	// MaxVersions bounds the versions remembered per service (the longest
	// idle go first).
	MaxVersions int `yaml:"max_versions"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Enabled: true, PollInterval: 15 * time.Second, MaxWait: 15 * time.Minute,
		ActivityWindow: time.Minute, Lookback: 24 * time.Hour,
		MaxEvents: 500, MaxVersions: 100,
	}
}

// Validate checks the section; errors are *field.Error naming the key.
func (c *Config) Validate() error {
	switch {
	case c.PollInterval < 100*time.Millisecond:
		return field.Errorf("poll_interval", "must be at least 100ms, got %s", model.Duration(c.PollInterval))
	case c.MaxWait < c.PollInterval:
		return field.Errorf("max_wait", "must be at least poll_interval (%s), got %s", model.Duration(c.PollInterval), model.Duration(c.MaxWait))
	case c.ActivityWindow < 100*time.Millisecond:
		return field.Errorf("activity_window", "must be at least 100ms, got %s", model.Duration(c.ActivityWindow))
	case c.Lookback < c.ActivityWindow:
		return field.Errorf("lookback", "must be at least activity_window (%s), got %s", model.Duration(c.ActivityWindow), model.Duration(c.Lookback))
	case c.MaxEvents < 1:
		return field.Errorf("max_events", "must be at least 1, got %d", c.MaxEvents)
	case c.MaxVersions < 2:
		return field.Errorf("max_versions", "must be at least 2, got %d", c.MaxVersions)
	}
	return nil
}
