package gate

import (
	"fmt"
	"time"

	"github.com/spanwatch/spanwatch/internal/field"
	"github.com/spanwatch/spanwatch/internal/query"
	"github.com/spanwatch/spanwatch/internal/regress"
)

// Config is the `gate:` section of the config file: the defaults of
// `spanwatch gate`, which flags override.
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
	// Alpha is the family-wise error rate across the gated checks (Holm).
	Alpha float64 `yaml:"alpha"`
	// FDR is the false-discovery rate of per-operation findings (BH).
	FDR float64 `yaml:"fdr"`
	// MinRatio are the smallest quantile ratios that count as large.
	MinRatio Quantiles `yaml:"min_ratio"`
	// MinAbsChange is the smallest absolute latency change (ms) that counts;
	// one bucket width is always required too.
	MinAbsChange float64 `yaml:"min_abs_change"`
	// ErrorRate: smallest error-rate increase (fraction) and ratio that count.
	ErrorRate ErrorRate `yaml:"error_rate"`
	// MinRequests per arm before a check may pass.
	MinRequests Quantiles `yaml:"min_requests"`
	// SRMAlpha is the significance of the sample-ratio check.
	SRMAlpha float64 `yaml:"srm_alpha"`
	// CandidateShare is the candidate's expected share of traffic; 0 skips
	// the sample-ratio check.
	CandidateShare float64 `yaml:"candidate_share"`
	// OnInconclusive maps an inconclusive verdict: inconclusive (exit 2),
	// pass (0) or fail (1).
	OnInconclusive string `yaml:"on_inconclusive"`
}

// Quantiles holds one number per gated quantile.
type Quantiles struct {
	P50 float64 `yaml:"p50"`
	P95 float64 `yaml:"p95"`
	P99 float64 `yaml:"p99"`
}

// ErrorRate holds the error-rate thresholds.
type ErrorRate struct {
	MinIncrease float64 `yaml:"min_increase"`
	MinRatio    float64 `yaml:"min_ratio"`
}

// WidenForOffset raises the quantile ratios to at least offset mode's
// (regress.Thresholds.ForOffset) and reports whether any of them changed.
func (c *Config) WidenForOffset() bool {
	before := c.MinRatio
	th := c.Thresholds().ForOffset()
	c.MinRatio = Quantiles{P50: th.P50Ratio, P95: th.P95Ratio, P99: th.P99Ratio}
	return c.MinRatio != before
}

// DefaultConfig returns the gate's defaults.
func DefaultConfig() Config {
	th := regress.DefaultThresholds()
	return Config{
		Window: 5 * time.Minute, MaxWait: 15 * time.Minute, PollInterval: 15 * time.Second,
		Alpha: th.Alpha, FDR: th.FDR,
		MinRatio:     Quantiles{P50: th.P50Ratio, P95: th.P95Ratio, P99: th.P99Ratio},
		MinAbsChange: th.MinAbsChange,
		ErrorRate:    ErrorRate{MinIncrease: th.ErrorPoints, MinRatio: th.ErrorRatio},
		MinRequests:  Quantiles{P50: th.MinRequestsP50, P95: th.MinRequestsP95, P99: th.MinRequestsP99},
		SRMAlpha:     th.SRMAlpha, OnInconclusive: "inconclusive",
	}
}

// Thresholds returns the decision rule's thresholds.
func (c *Config) Thresholds() regress.Thresholds {
	return regress.Thresholds{
		Alpha: c.Alpha, FDR: c.FDR,
		P50Ratio: c.MinRatio.P50, P95Ratio: c.MinRatio.P95, P99Ratio: c.MinRatio.P99,
		MinAbsChange: c.MinAbsChange, ErrorPoints: c.ErrorRate.MinIncrease, ErrorRatio: c.ErrorRate.MinRatio,
		MinRequestsP50: c.MinRequests.P50, MinRequestsP95: c.MinRequests.P95, MinRequestsP99: c.MinRequests.P99,
		SRMAlpha: c.SRMAlpha,
	}
}

// Validate checks the section; errors name the key.
func (c *Config) Validate() error {
	switch {
	case c.Window < time.Minute:
		return fieldErr("window", "window must be at least 1m, got %s", c.Window)
	case c.MaxWait < 0:
		return fieldErr("max_wait", "max_wait must not be negative, got %s", c.MaxWait)
	case c.PollInterval < time.Second:
		return fieldErr("poll_interval", "poll_interval must be at least 1s, got %s", c.PollInterval)
	case c.Alpha <= 0 || c.Alpha >= 0.5:
		return fieldErr("alpha", "alpha must be in (0, 0.5), got %g", c.Alpha)
	case c.FDR <= 0 || c.FDR >= 1:
		return fieldErr("fdr", "fdr must be in (0, 1), got %g", c.FDR)
	case c.MinRatio.P50 < 1 || c.MinRatio.P95 < 1 || c.MinRatio.P99 < 1:
		return fieldErr("min_ratio", "min_ratio values must be at least 1, got %+v", c.MinRatio)
	case c.MinAbsChange < 0:
		return fieldErr("min_abs_change", "min_abs_change must not be negative, got %g", c.MinAbsChange)
	case c.ErrorRate.MinIncrease < 0 || c.ErrorRate.MinRatio < 1:
		return fieldErr("error_rate", "error_rate needs min_increase ≥ 0 and min_ratio ≥ 1, got %+v", c.ErrorRate)
	case c.MinRequests.P50 < 1 || c.MinRequests.P95 < 1 || c.MinRequests.P99 < 1:
		return fieldErr("min_requests", "min_requests values must be at least 1, got %+v", c.MinRequests)
	case c.SRMAlpha <= 0 || c.SRMAlpha >= 0.5:
		return fieldErr("srm_alpha", "srm_alpha must be in (0, 0.5), got %g", c.SRMAlpha)
	case c.CandidateShare < 0 || c.CandidateShare >= 1:
		return fieldErr("candidate_share", "candidate_share must be in [0, 1), got %g", c.CandidateShare)
	}
	for name := range c.Headers {
		if err := query.CheckHeader(name); err != nil {
			return fieldErr("headers."+name, "%v", err)
		}
	}
	switch c.OnInconclusive {
	case "inconclusive", "pass", "fail":
	default:
		return fieldErr("on_inconclusive", "on_inconclusive must be inconclusive, pass or fail, got %q", c.OnInconclusive)
	}
	return nil
}

func fieldErr(key, format string, args ...any) error {
	return &field.Error{Path: key, Err: fmt.Errorf(format, args...)}
}
