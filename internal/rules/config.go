package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/spanwatch/spanwatch/internal/field"
)

// Config is the `rules:` section of the config file.
type Config struct {
	// EvaluationInterval is the default interval of rule groups that set
	// none (the recipe's rules use 30s).
	EvaluationInterval time.Duration `yaml:"evaluation_interval"`
	// ExternalLabels are added to every alert sent.
	ExternalLabels map[string]string `yaml:"external_labels"`
	// Builtin configures the built-in service-performance pack.
	Builtin PackConfig `yaml:"builtin"`
}

// DefaultConfig returns the defaults: 30s, the pack on.
func DefaultConfig() Config {
	return Config{EvaluationInterval: 30 * time.Second, Builtin: DefaultPackConfig()}
}

// Validate checks the section; errors name the key.
func (c *Config) Validate() error {
	if c.EvaluationInterval < time.Second {
		return &field.Error{Path: "evaluation_interval", Err: fmt.Errorf("must be at least 1s, got %s", c.EvaluationInterval)}
	}
	for k := range c.ExternalLabels {
		if !model.LegacyValidation.IsValidLabelName(k) || strings.HasPrefix(k, "__") {
			return &field.Error{Path: "external_labels." + k, Err: fmt.Errorf("%q is not a valid label name", k)}
		}
	}
	if err := c.Builtin.Validate(); err != nil {
		return field.Under("builtin", err)
	}
	return nil
}
