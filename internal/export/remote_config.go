package export

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Remote-write defaults, as in Prometheus's queue_config where it has the
// same setting.
const (
	DefaultRemoteWriteTimeout           = 30 * time.Second
	DefaultRemoteWriteQueueSnapshots    = 4
	DefaultRemoteWriteMaxSamplesPerSend = 2000
	DefaultRemoteWriteMinBackoff        = 30 * time.Millisecond
	DefaultRemoteWriteMaxBackoff        = 5 * time.Second
	// DefaultRemoteWriteSendNativeHistograms differs from Prometheus's
	// default (false): the native histograms are what makes spanwatch's
	// quantiles precise, in a remote store as in the embedded one.
	DefaultRemoteWriteSendNativeHistograms = true
)

// ErrInvalidRemoteWrite is wrapped by every error of
// RemoteWriteConfig.Validate.
var ErrInvalidRemoteWrite = errors.New("invalid remote write config")

// RemoteWriteConfig configures one remote-write endpoint (one entry of the
// `remote_write:` list). Zero values mean the defaults.
type RemoteWriteConfig struct {
	// URL is the remote-write endpoint, e.g.
	// http://prometheus:9090/api/v1/write,
	// http://mimir:8080/api/v1/push or http://thanos-receive:19291/api/v1/receive.
	URL string `yaml:"url"`
	// Name identifies the endpoint in self-metrics (label remote_name) and
	// logs; it must be unique among the endpoints. Default: the URL's
	// host:port.
	Name string `yaml:"name"`
	// Timeout bounds one HTTP request (default 30s).
	Timeout time.Duration `yaml:"timeout"`
	// QueueSnapshots is how many snapshots may wait to be sent, the one
	// being sent included (default 4). When a snapshot arrives at a full
	// queue the oldest is dropped and its samples counted as dropped
	// (reason queue_full); counters are cumulative, so the next snapshot
	// carries its counts.
	QueueSnapshots int `yaml:"queue_snapshots"`
	// MaxSamplesPerSend is the largest number of samples (floats and native
	// histograms) in one request (default 2000).
	MaxSamplesPerSend int `yaml:"max_samples_per_send"`
	// SendNativeHistograms says whether native histograms (kept unless
	// spanmetrics.histogram.exponential.enabled is false) are sent to the
	// endpoint, as Prometheus's remote_write send_native_histograms does.
	// When false the endpoint gets the classic series only (buckets, _sum,
	// _count, calls, target_info): no native histogram samples and no
	// native staleness markers. nil means true, unlike Prometheus (false).
	// Set it to false for a store that refuses them, such as Prometheus 2.x
	// without --enable-feature=native-histograms: it answers 500 to every
	// request holding one, so with true it receives nothing at all.
	SendNativeHistograms *bool `yaml:"send_native_histograms"`
	// MinBackoff is the first wait after a recoverable error (5xx, 429,
	// network error); each further retry doubles it, up to MaxBackoff, with
	// jitter (defaults 30ms and 5s).
	MinBackoff time.Duration `yaml:"min_backoff"`
	// MaxBackoff caps the wait between retries.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Headers are added to every request (e.g. X-Scope-OrgID for Mimir).
	// Headers that the protocol sets (Content-Type, Content-Encoding,
	// User-Agent, X-Prometheus-Remote-Write-Version, …) may not be set.
	Headers map[string]string `yaml:"headers"`
	// BasicAuth sends HTTP basic authentication.
	BasicAuth *RemoteWriteBasicAuth `yaml:"basic_auth"`
	// BearerToken sends `Authorization: Bearer <token>`. At most one of
	// BasicAuth and BearerToken may be set.
	BearerToken string `yaml:"bearer_token"`
	// ExternalLabels are added to every series unless the series already
	// has the label, like Prometheus's global external_labels. Replicas
	// writing to the same store need one label that tells them apart (see
	// docs/scale-out.md).
	ExternalLabels map[string]string `yaml:"external_labels"`
}

// RemoteWriteBasicAuth holds HTTP basic authentication credentials.
type RemoteWriteBasicAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// DefaultRemoteWriteConfig returns a config with every default filled in and
// no URL.
func DefaultRemoteWriteConfig() RemoteWriteConfig {
	return RemoteWriteConfig{
		Timeout:           DefaultRemoteWriteTimeout,
		QueueSnapshots:    DefaultRemoteWriteQueueSnapshots,
		MaxSamplesPerSend: DefaultRemoteWriteMaxSamplesPerSend,
		MinBackoff:        DefaultRemoteWriteMinBackoff,
		MaxBackoff:        DefaultRemoteWriteMaxBackoff,
		// A fresh pointer per call: callers may set it through the pointer.
		SendNativeHistograms: new(DefaultRemoteWriteSendNativeHistograms),
	}
}

// withDefaults returns c with zero values replaced by the defaults.
func (c RemoteWriteConfig) withDefaults() RemoteWriteConfig {
	d := DefaultRemoteWriteConfig()
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.QueueSnapshots == 0 {
		c.QueueSnapshots = d.QueueSnapshots
	}
	if c.MaxSamplesPerSend == 0 {
		c.MaxSamplesPerSend = d.MaxSamplesPerSend
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = d.MinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(d.MaxBackoff, c.MinBackoff)
	}
	if c.SendNativeHistograms == nil {
		c.SendNativeHistograms = new(DefaultRemoteWriteSendNativeHistograms)
	}
	c.Name = c.RemoteName()
	return c
}

// sendNativeHistograms is SendNativeHistograms with nil meaning the
// default, true.
func (c *RemoteWriteConfig) sendNativeHistograms() bool {
	if c.SendNativeHistograms == nil {
		return DefaultRemoteWriteSendNativeHistograms
	}
	return *c.SendNativeHistograms
}

// RemoteName is the endpoint's name: Name, or the URL's host:port when
// Name is empty. Callers holding several endpoints should check that the
// names are unique; NewRemoteWriter fails on a name already registered.
func (c *RemoteWriteConfig) RemoteName() string {
	if c.Name != "" {
		return c.Name
	}
	if u, err := url.Parse(c.URL); err == nil && u.Host != "" {
		return u.Host
	}
	return c.URL
}

// reservedRemoteWriteHeaders are set by the protocol or the HTTP client;
// the list is Prometheus's (config.reservedHeaders).
var reservedRemoteWriteHeaders = map[string]bool{
	"host":                              true,
	"content-encoding":                  true,
	"content-length":                    true,
	"content-type":                      true,
	"user-agent":                        true,
	"connection":                        true,
	"keep-alive":                        true,
	"proxy-authenticate":                true,
	"proxy-authorization":               true,
	"www-authenticate":                  true,
	"accept-encoding":                   true,
	"x-prometheus-remote-write-version": true,
	"x-prometheus-remote-read-version":  true,
	"retry-attempt":                     true,
}

// Validate checks the configuration. Zero values are valid (they mean the
// defaults); Validate does not modify c.
func (c *RemoteWriteConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidRemoteWrite, fmt.Sprintf(format, args...)))
	}
	if c.URL == "" {
		bad("url is required")
	} else if u, err := url.Parse(c.URL); err != nil {
		bad("url %q: %v", c.URL, err)
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url %q: want http:// or https:// and a host", c.URL)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"timeout", c.Timeout}, {"min_backoff", c.MinBackoff}, {"max_backoff", c.MaxBackoff}} {
		if d.d < 0 {
			bad("%s %v is negative", d.name, d.d)
		}
	}
	if c.MinBackoff > 0 && c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		bad("min_backoff %v is larger than max_backoff %v", c.MinBackoff, c.MaxBackoff)
	}
	if c.QueueSnapshots < 0 {
		bad("queue_snapshots %d is negative", c.QueueSnapshots)
	}
	if c.MaxSamplesPerSend < 0 {
		bad("max_samples_per_send %d is negative", c.MaxSamplesPerSend)
	}
	if c.BasicAuth != nil && c.BearerToken != "" {
		bad("at most one of basic_auth and bearer_token may be set")
	}
	for _, h := range slices.Sorted(maps.Keys(c.Headers)) {
		lh := strings.ToLower(h)
		switch {
		case reservedRemoteWriteHeaders[lh]:
			bad("header %q is set by the remote-write protocol and may not be overridden", h)
		case lh == "authorization" && (c.BasicAuth != nil || c.BearerToken != ""):
			bad("header %q conflicts with basic_auth/bearer_token", h)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.ExternalLabels)) {
		v := c.ExternalLabels[name]
		switch {
		case !model.LegacyValidation.IsValidLabelName(name):
			bad("external label name %q is not a valid Prometheus label name", name)
		case strings.HasPrefix(name, "__"):
			bad("external label name %q: names starting with __ are reserved", name)
		case v == "":
			bad("external label %q has an empty value", name)
		}
	}
	return errors.Join(errs...)
}
