package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/deploy"
	"github.com/spanwatch/spanwatch/internal/export"
	"github.com/spanwatch/spanwatch/internal/field"
	"github.com/spanwatch/spanwatch/internal/gate"
	"github.com/spanwatch/spanwatch/internal/ingest"
	"github.com/spanwatch/spanwatch/internal/regress"
	"github.com/spanwatch/spanwatch/internal/rules"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
	"github.com/spanwatch/spanwatch/internal/testutil"
)

const ms = time.Millisecond

func ptr[T any](v T) *T { return &v }

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		env  map[string]string
		// want edits Default() into the expected result; nil means Default().
		want func(f *File)
		// wantErr lists the prefix of each line of the error, in order.
		wantErr []string
	}{
		// Defaults.
		{name: "empty file", in: ""},
		{name: "only comments", in: "# nothing here\n\n   # nor here\n"},
		{name: "null document", in: "~\n"},
		{name: "empty document", in: "---\n"},
		{name: "empty sections", in: "spanmetrics:\nexposition: ~\n"},
		{name: "empty keys keep defaults", in: `
spanmetrics:
  histogram:
    unit:
    explicit:
      buckets:
  dimensions:
  namespace: ~
exposition:
  const_labels:
`},

		// Overriding.
		{
			name: "only dimensions keeps default buckets",
			in: `
spanmetrics:
  dimensions:
    - name: http.method
      default: GET
    - name: k8s.namespace.name
`,
			want: func(f *File) {
				f.SpanMetrics.Dimensions = []spanmetrics.Dimension{
					{Name: "http.method", Default: ptr("GET")},
					{Name: "k8s.namespace.name"},
				}
			},
		},
		{
			name: "buckets replace the default list",
			in:   "spanmetrics:\n  histogram:\n    explicit:\n      buckets: [1ms, 1s]\n",
			want: func(f *File) { f.SpanMetrics.Histogram.Explicit.Buckets = []time.Duration{ms, time.Second} },
		},
		{
			name: "empty list empties",
			in:   "spanmetrics:\n  histogram:\n    explicit:\n      buckets: []\n",
			want: func(f *File) { f.SpanMetrics.Histogram.Explicit.Buckets = []time.Duration{} },
		},
		{
			name: "scalars and exposition",
			in: `
spanmetrics:
  histogram: {unit: s}
  aggregation_cardinality_limit: 0
  series_expiration: 0
  metrics_flush_interval: 1m
  exclude_dimensions: [service.version]
exposition:
  naming: legacy
  namespace: jaeger_spm
  const_labels: {cluster: production}
`,
			want: func(f *File) {
				f.SpanMetrics.Histogram.Unit = spanmetrics.UnitSeconds
				f.SpanMetrics.AggregationCardinalityLimit = 0
				f.SpanMetrics.SeriesExpiration = 0
				f.SpanMetrics.MetricsFlushInterval = time.Minute
				f.SpanMetrics.ExcludeDimensions = []string{spanmetrics.DimServiceVersion}
				f.Exposition = spanmetrics.NamingConfig{
					Naming: spanmetrics.NamingLegacy, Namespace: "jaeger_spm",
					ConstLabels: map[string]string{"cluster": "production"},
				}
			},
		},
		{
			name: "metrics_expiration is the connector's series_expiration",
			in:   "spanmetrics:\n  series_expiration: 0\n  metrics_expiration: 5m\n",
			want: func(f *File) {
				f.SpanMetrics.SeriesExpiration = 0
				f.SpanMetrics.MetricsExpiration = 5 * time.Minute
			},
		},
		{
			name: "bare exponential keeps native histograms on with defaults",
			in:   "spanmetrics:\n  histogram:\n    exponential:\n",
		},
		{
			name: "empty exponential keeps native histograms on with defaults",
			in:   "spanmetrics:\n  histogram:\n    exponential: {}\n",
		},
		{
			name: "exponential keeps the defaults it does not set",
			in:   "spanmetrics:\n  histogram:\n    exponential: {max_size: 320}\n",
			want: func(f *File) {
				f.SpanMetrics.Histogram.Exponential = spanmetrics.ExponentialConfig{Enabled: true, MaxSize: 320, Schema: ptr(3)}
			},
		},
		{
			name: "explicit buckets alone keep native histograms on",
			in:   "spanmetrics:\n  histogram:\n    explicit:\n      buckets: [2ms, 10s]\n",
			want: func(f *File) {
				f.SpanMetrics.Histogram.Explicit.Buckets = []time.Duration{2 * ms, 10 * time.Second}
			},
		},
		{
			name: "exponential enabled false turns native histograms off",
			in:   "spanmetrics:\n  histogram:\n    exponential: {enabled: false}\n",
			want: func(f *File) { f.SpanMetrics.Histogram.Exponential.Enabled = false },
		},
		{
			name: "exponential enabled from the environment",
			in:   "spanmetrics:\n  histogram:\n    exponential:\n      enabled: ${NATIVE}\n",
			env:  map[string]string{"NATIVE": "false"},
			want: func(f *File) { f.SpanMetrics.Histogram.Exponential.Enabled = false },
		},
		{
			name: "exponential enabled of the wrong type",
			in:   "spanmetrics:\n  histogram:\n    exponential:\n      enabled: no-thanks\n",
			wantErr: []string{
				`config.yaml:4: spanmetrics.histogram.exponential.enabled: cannot parse "no-thanks" as true or false`,
			},
		},
		{
			name: "exponential max_size out of range, even when disabled",
			in:   "spanmetrics:\n  histogram:\n    exponential:\n      enabled: false\n      max_size: 2\n",
			wantErr: []string{
				`config.yaml:5: spanmetrics.histogram.exponential.max_size: max_size must be between 4 and 10000, got 2`,
			},
		},
		{
			name:    "unknown key in exponential",
			in:      "spanmetrics:\n  histogram:\n    exponential:\n      enable: false\n",
			wantErr: []string{`config.yaml:4: spanmetrics.histogram.exponential.enable: unknown key (did you mean "enabled"?)`},
		},
		{
			name: "anchors and merge keys",
			in: `
spanmetrics:
  dimensions:
    - &dim {name: http.method, default: GET}
    - <<: *dim
      name: http.route
`,
			want: func(f *File) {
				f.SpanMetrics.Dimensions = []spanmetrics.Dimension{
					{Name: "http.method", Default: ptr("GET")},
					{Name: "http.route", Default: ptr("GET")},
				}
			},
		},

		// Environment expansion.
		{
			name: "env expansion",
			in: `
spanmetrics:
  aggregation_cardinality_limit: ${LIMIT}
  series_expiration: $EXPIRY
  namespace: ${UNSET}
  dimensions:
    - name: ${env:DIM}
      default: "${UNSET}"
    - name: cost$$
exposition:
  namespace: ${NS:-jaeger_spm}
  const_labels:
    cluster: ${CLUSTER}
`,
			env: map[string]string{"LIMIT": "5000", "EXPIRY": "1h", "DIM": "http.method", "CLUSTER": "production"},
			want: func(f *File) {
				f.SpanMetrics.AggregationCardinalityLimit = 5000
				f.SpanMetrics.SeriesExpiration = time.Hour
				f.SpanMetrics.Dimensions = []spanmetrics.Dimension{
					{Name: "http.method", Default: ptr("")},
					{Name: "cost$"},
				}
				f.Exposition.Namespace = "jaeger_spm"
				f.Exposition.ConstLabels = map[string]string{"cluster": "production"}
			},
		},
		{
			name:    "keys are not expanded",
			in:      "exposition:\n  const_labels:\n    ${CLUSTER}: x\n",
			env:     map[string]string{"CLUSTER": "production"},
			wantErr: []string{`config.yaml:3: exposition.const_labels.${CLUSTER}: "${CLUSTER}" is not a valid label name`},
		},
		{
			name: "env value of the wrong type",
			in:   "spanmetrics:\n  aggregation_cardinality_limit: ${LIMIT}\n",
			env:  map[string]string{"LIMIT": "lots"},
			wantErr: []string{
				`config.yaml:2: spanmetrics.aggregation_cardinality_limit: cannot parse "lots" as an integer`,
			},
		},
		{
			name: "quoted env value stays a string",
			in:   "spanmetrics:\n  aggregation_cardinality_limit: \"${LIMIT}\"\n",
			env:  map[string]string{"LIMIT": "5000"},
			wantErr: []string{
				`config.yaml:2: spanmetrics.aggregation_cardinality_limit: cannot parse "5000" as an integer`,
			},
		},
		{
			name:    "bad env reference",
			in:      "exposition:\n  namespace: ${NS\n",
			wantErr: []string{`config.yaml:2: exposition.namespace: unterminated "${" in "${NS"`},
		},

		// Unknown keys at several depths.
		{
			name:    "unknown section",
			in:      "spanmetric: {}\n",
			wantErr: []string{`config.yaml:1: spanmetric: unknown key (did you mean "spanmetrics"?)`},
		},
		{
			name:    "collector config",
			in:      "connectors:\n  spanmetrics: {}\n",
			wantErr: []string{`config.yaml:1: connectors: unknown key (sections are spanmetrics, exposition, remote_write, gate, rules, deploy, otlp)`},
		},
		{
			name: "unknown key in a section",
			in:   "# comment\nspanmetrics:\n  dimensions: []\n\n\n\n  histogramm:\n    unit: s\n",
			wantErr: []string{
				`config.yaml:7: spanmetrics.histogramm: unknown key (did you mean "histogram"?)`,
			},
		},
		{
			name: "key of the other section",
			in:   "spanmetrics:\n  naming: legacy\n",
			wantErr: []string{
				`config.yaml:2: spanmetrics.naming: unknown key (did you mean exposition.naming?)`,
			},
		},
		{
			name: "unknown deep key",
			in:   "spanmetrics:\n  histogram:\n    explicit:\n      bucket: [1ms]\n",
			wantErr: []string{
				`config.yaml:4: spanmetrics.histogram.explicit.bucket: unknown key (did you mean "buckets"?)`,
			},
		},
		{
			name: "unknown key in a list element",
			in:   "spanmetrics:\n  dimensions:\n    - name: a\n    - name: b\n      defualt: x\n",
			wantErr: []string{
				`config.yaml:5: spanmetrics.dimensions[1].defualt: unknown key (did you mean "default"?)`,
			},
		},
		{
			name:    "unknown key without a suggestion",
			in:      "exposition:\n  colour: blue\n",
			wantErr: []string{`config.yaml:2: exposition.colour: unknown key`},
		},
		{
			name: "duplicate key",
			in:   "spanmetrics:\n  namespace: a\n  namespace: b\n",
			wantErr: []string{
				`config.yaml:3: spanmetrics.namespace: duplicate key (first set on line 2)`,
			},
		},

		// Durations.
		{
			name: "bad duration",
			in:   "spanmetrics:\n  histogram:\n    explicit:\n      buckets: [2ms, 5ms, 2.5x]\n",
			wantErr: []string{
				`config.yaml:4: spanmetrics.histogram.explicit.buckets[2]: cannot parse "2.5x" as a duration`,
			},
		},
		{
			name: "bare number is not a duration",
			in:   "spanmetrics:\n  metrics_flush_interval: 15\n",
			wantErr: []string{
				`config.yaml:2: spanmetrics.metrics_flush_interval: cannot parse 15 as a duration: a unit is required (e.g. 15ms or 15s)`,
			},
		},
		{
			name: "tiny bucket",
			in:   "spanmetrics:\n  histogram:\n    explicit:\n      buckets: [1ns]\n",
			wantErr: []string{
				`config.yaml:4: spanmetrics.histogram.explicit.buckets[0]: bucket bound 1ns is below 1µs`,
			},
		},
		{
			name: "unsorted buckets",
			in: `spanmetrics:
  histogram:
    explicit:
      buckets:
        - 2ms
        - 5ms
        - 10ms
        - 5ms
`,
			wantErr: []string{
				`config.yaml:8: spanmetrics.histogram.explicit.buckets[3]: buckets must be strictly increasing: 5ms follows 10ms`,
			},
		},

		// Remote write.
		{
			name: "remote write without native histograms",
			in: `
remote_write:
  - url: http://prometheus:9090/api/v1/write
    send_native_histograms: false
  - url: http://mimir:8080/api/v1/push
    send_native_histograms:
  - url: http://thanos:19291/api/v1/receive
`,
			want: func(f *File) {
				f.RemoteWrite = []export.RemoteWriteConfig{
					{URL: "http://prometheus:9090/api/v1/write", SendNativeHistograms: ptr(false)},
					// Empty or absent: the writer's default (true).
					{URL: "http://mimir:8080/api/v1/push"},
					{URL: "http://thanos:19291/api/v1/receive"},
				}
			},
		},
		{
			name: "remote write send_native_histograms of the wrong type",
			in:   "remote_write:\n  - url: http://prometheus:9090/api/v1/write\n    send_native_histograms: classic\n",
			wantErr: []string{
				`config.yaml:3: remote_write[0].send_native_histograms: cannot parse "classic" as true or false`,
			},
		},
		{
			name:    "remote write send_native_histograms given a list",
			in:      "remote_write:\n  - url: http://prometheus:9090/api/v1/write\n    send_native_histograms: [false]\n",
			wantErr: []string{`config.yaml:3: remote_write[0].send_native_histograms: expected a single value, got a list`},
		},

		// Kinds and types.
		{
			name: "wrong kinds",
			in: `spanmetrics:
  histogram: [ms]
  dimensions: http.method
  exclude_dimensions: [[service.version]]
  aggregation_cardinality_limit: lots
  exemplars: {enabled: maybe}
exposition:
  const_labels: cluster
`,
			wantErr: []string{
				`config.yaml:2: spanmetrics.histogram: expected a mapping, got a list`,
				`config.yaml:3: spanmetrics.dimensions: expected a list, got "http.method"`,
				`config.yaml:4: spanmetrics.exclude_dimensions[0]: expected a single value, got a list`,
				`config.yaml:5: spanmetrics.aggregation_cardinality_limit: cannot parse "lots" as an integer`,
				`config.yaml:6: spanmetrics.exemplars.enabled: cannot parse "maybe" as true or false`,
				`config.yaml:8: exposition.const_labels: expected a mapping, got "cluster"`,
			},
		},
		{
			name:    "empty list element",
			in:      "spanmetrics:\n  dimensions:\n    - name: a\n    -\n",
			wantErr: []string{`config.yaml:4: spanmetrics.dimensions[1]: empty list element`},
		},
		{
			name:    "top level is not a mapping",
			in:      "- spanmetrics\n",
			wantErr: []string{`config.yaml:1: expected a mapping of sections (spanmetrics, exposition, remote_write, gate, rules, deploy, otlp), got a list`},
		},
		{
			name: "syntax error",
			in:   "spanmetrics:\n  namespace: x\n\thistogram: {}\n",
			// yaml.v3 reports the line where the enclosing construct starts.
			wantErr: []string{`config.yaml:2: found a tab character that violates indentation`},
		},
		{
			name:    "two documents",
			in:      "spanmetrics: {}\n---\nexposition: {}\n",
			wantErr: []string{`config.yaml:2: a second YAML document`},
		},

		// Validation.
		{
			name:    "bad naming",
			in:      "exposition:\n  namespace: jaeger_spm\n  naming: prometheus\n",
			wantErr: []string{`config.yaml:3: exposition.naming: naming must be "otel" or "legacy", got "prometheus"`},
		},
		{
			name:    "bad const label",
			in:      "exposition:\n  const_labels:\n    cluster: production\n    k8s.cluster: x\n",
			wantErr: []string{`config.yaml:4: exposition.const_labels.k8s.cluster: "k8s.cluster" is not a valid label name`},
		},
		{
			name:    "bad namespace",
			in:      "exposition:\n  namespace: jaeger-spm\n",
			wantErr: []string{`config.yaml:2: exposition.namespace: namespace "jaeger-spm" is not a valid metric name prefix`},
		},
		{
			name: "delta temporality",
			in:   "spanmetrics:\n  aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA\n",
			wantErr: []string{
				`config.yaml:2: spanmetrics.aggregation_temporality: only CUMULATIVE is supported`,
			},
		},
		{
			name: "both expirations",
			in:   "spanmetrics:\n  series_expiration: 1m\n  metrics_expiration: 2m\n",
			wantErr: []string{
				`config.yaml:3: spanmetrics.metrics_expiration: set series_expiration or metrics_expiration, not both`,
			},
		},
		{
			name: "missing dimension name points at the element",
			in:   "spanmetrics:\n  dimensions:\n    - default: x\n",
			wantErr: []string{
				`config.yaml:3: spanmetrics.dimensions[0].name: dimension name must not be empty`,
			},
		},
		{
			name: "one validation error per section",
			in:   "spanmetrics:\n  histogram: {unit: h}\nexposition:\n  naming: new\n",
			wantErr: []string{
				`config.yaml:2: spanmetrics.histogram.unit: unit must be "ms" or "s", got "h"`,
				`config.yaml:4: exposition.naming: naming must be "otel" or "legacy", got "new"`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			got, err := Parse([]byte(tc.in), "config.yaml")
			if tc.wantErr != nil {
				require.Error(t, err)
				require.Nil(t, got)
				requireErrorLines(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			want := Default()
			if tc.want != nil {
				tc.want(want)
			}
			require.Equal(t, want, got)
		})
	}
}

// requireErrorLines checks that err has one line per entry of want, each
// starting with that entry, and that each line is an *Error.
func requireErrorLines(t *testing.T, err error, want []string) {
	t.Helper()
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, len(want), err.Error())
	for i, w := range want {
		require.True(t, strings.HasPrefix(lines[i], w), "line %d:\n got: %s\nwant: %s…", i, lines[i], w)
	}
	errs := unjoin(err)
	require.Len(t, errs, len(want))
	for _, e := range errs {
		var ce *Error
		require.ErrorAs(t, e, &ce)
	}
}

func TestErrorDetails(t *testing.T) {
	_, err := Parse([]byte("spanmetrics:\n  histogramm: {}\n  namespace: x\n  namespace: y\n"), "conf/spanwatch.yml")
	require.ErrorIs(t, err, ErrUnknownKey)
	require.ErrorIs(t, err, ErrDuplicateKey)
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, &Error{File: "conf/spanwatch.yml", Line: 2, Path: "spanmetrics.histogramm", Err: ce.Err}, ce)

	_, err = Parse([]byte("exposition:\n  naming: x\n"), "c.yaml")
	var fe *field.Error
	require.False(t, errors.As(err, &fe), "the section's FieldError is replaced by an *Error with the full path")
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "exposition.naming", ce.Path)
	require.Equal(t, 2, ce.Line)

	// Without a file name, the line is still there.
	_, err = Parse([]byte("exposition:\n  naming: x\n"), "")
	require.ErrorContains(t, err, "line 2: exposition.naming: naming must be")
}

func TestValidate(t *testing.T) {
	require.NoError(t, Default().Validate())

	f := Default()
	f.SpanMetrics.Histogram.Explicit.Buckets = []time.Duration{5 * ms, 2 * ms}
	f.Exposition.Naming = "x"
	err := f.Validate()
	requireErrorLines(t, err, []string{
		"spanmetrics.histogram.explicit.buckets[1]: buckets must be strictly increasing: 2ms follows 5ms",
		`exposition.naming: naming must be "otel" or "legacy", got "x"`,
	})

	// An invalid value the file does not set has no line: the section's
	// line, or none.
	tr := &tree{lines: map[string]int{"spanmetrics": 3, "spanmetrics.histogram": 4}}
	require.Equal(t, 4, tr.lineOf("spanmetrics.histogram.explicit.buckets[1]"))
	require.Equal(t, 3, tr.lineOf("spanmetrics.dimensions[0].name"))
	require.Equal(t, 0, tr.lineOf("exposition.naming"))
}

func TestLoadFull(t *testing.T) {
	t.Setenv("REGION", "eu-west-1")
	f, err := Load(filepath.Join("testdata", "full.yaml"))
	require.NoError(t, err)
	want := &File{
		SpanMetrics: spanmetrics.Config{
			Histogram: spanmetrics.HistogramConfig{
				Disable:     true,
				Unit:        spanmetrics.UnitSeconds,
				Explicit:    spanmetrics.ExplicitConfig{Buckets: []time.Duration{5 * ms, 50 * ms, 500 * ms, 5 * time.Second}},
				Exponential: spanmetrics.ExponentialConfig{Enabled: false, MaxSize: 320, Schema: ptr(5)},
			},
			Dimensions: []spanmetrics.Dimension{
				{Name: "http.method", Default: ptr("GET")},
				{Name: "k8s.namespace.name"},
			},
			ExcludeDimensions:           []string{spanmetrics.DimServiceVersion},
			Namespace:                   "spans",
			AggregationCardinalityLimit: 5000,
			SeriesExpiration:            time.Hour,
			MetricsFlushInterval:        30 * time.Second,
			AggregationTemporality:      "AGGREGATION_TEMPORALITY_CUMULATIVE",
			DimensionsCacheSize:         1000,
			ResourceMetricsCacheSize:    2000,
			Exemplars:                   spanmetrics.ExemplarsConfig{Enabled: true, MaxPerDataPoint: 5},
		},
		Deploy: deploy.Config{Enabled: false, PollInterval: 30 * time.Second, MaxWait: 20 * time.Minute, ActivityWindow: 2 * time.Minute,
			Lookback: 12 * time.Hour, AlertOnInconclusive: true, MaxEvents: 50, MaxVersions: 20},
		Exposition: spanmetrics.NamingConfig{
			Namespace:   "jaeger_spm",
			ConstLabels: map[string]string{"cluster": "production", "region": "eu-west-1"},
			Naming:      spanmetrics.NamingLegacy,
		},
		RemoteWrite: []export.RemoteWriteConfig{
			{
				URL: "https://mimir.example.com/api/v1/push", Name: "mimir", Timeout: 10 * time.Second,
				QueueSnapshots: 8, MaxSamplesPerSend: 5000, MinBackoff: 50 * time.Millisecond, MaxBackoff: 10 * time.Second,
				Headers:              map[string]string{"X-Scope-OrgID": "team-a"},
				BasicAuth:            &export.RemoteWriteBasicAuth{Username: "spanwatch", Password: "secret"},
				ExternalLabels:       map[string]string{"replica": "a"},
				SendNativeHistograms: ptr(false),
			},
			{URL: "http://prometheus:9090/api/v1/write", BearerToken: "tok"},
		},
		Gate: gate.Config{
			URL: "http://mimir:8080/prometheus", Headers: map[string]string{"X-Scope-OrgID": "team-a"},
			Window: 10 * time.Minute, MaxWait: 30 * time.Minute, PollInterval: 30 * time.Second,
			Thresholds: regress.Thresholds{
				Alpha: 0.005, FDR: 0.1, MinRatio: regress.Quantiles{P50: 1.2, P95: 1.15, P99: 1.3}, MinAbsChange: 10,
				ErrorRate: regress.ErrorRate{MinIncrease: 0.01, MinRatio: 3}, MinRequests: regress.Quantiles{P50: 50, P95: 300, P99: 2000},
				SRMAlpha: 0.0001, CandidateShare: 0.2,
			},
			OnInconclusive: "fail",
		},
		Rules: rules.Config{
			EvaluationInterval: time.Minute,
			ExternalLabels:     map[string]string{"cluster": "prod"},
			Builtin: rules.PackConfig{
				Enabled: false, Interval: time.Minute, RateWindow: 10 * time.Minute, MinRequestRate: 1,
				Labels: map[string]string{"team": "shop"}, GroupBy: []string{"k8s_namespace"},
				P95Regression:  rules.ChangeAlert{AlertConfig: rules.AlertConfig{Enabled: false, For: 20 * time.Minute, Labels: map[string]string{"severity": "page"}}, Threshold: 0.3, Offset: 24 * time.Hour},
				P99Spike:       rules.LatencyAlert{AlertConfig: rules.AlertConfig{Enabled: false, For: 10 * time.Minute, Labels: map[string]string{"severity": "page"}}, ThresholdMS: 3000},
				ErrorRate:      rules.RatioAlert{AlertConfig: rules.AlertConfig{Enabled: false, For: 10 * time.Minute, Labels: map[string]string{"severity": "page"}}, Threshold: 0.1},
				SlowOperation:  rules.LatencyAlert{AlertConfig: rules.AlertConfig{Enabled: false, For: 30 * time.Minute, Labels: map[string]string{"severity": "page"}}, ThresholdMS: 2000},
				ThroughputDrop: rules.ChangeAlert{AlertConfig: rules.AlertConfig{Enabled: false, For: 10 * time.Minute, Labels: map[string]string{"severity": "page"}}, Threshold: 0.8, Offset: time.Hour},
			},
		},
		// Relative paths are resolved against the file's directory.
		OTLP: ingest.ReceiversConfig{
			GRPC: ingest.ServerConfig{
				TLS: &ingest.TLSConfig{CertFile: "testdata/tls/server.crt", KeyFile: "/etc/spanwatch/tls/server.key", ClientCAFile: "testdata/tls/ca.crt",
					MinVersion: "1.3", MaxVersion: "1.3", ReloadInterval: time.Hour},
				Auth: &ingest.AuthConfig{BearerTokenFile: "testdata/secrets/token"},
			},
			HTTP: ingest.ServerConfig{
				TLS: &ingest.TLSConfig{CertFile: "testdata/tls/http.crt", KeyFile: "testdata/tls/http.key", ClientCAFile: "testdata/tls/http-ca.crt",
					MinVersion: "1.1", MaxVersion: "1.2", ReloadInterval: 5 * time.Minute},
				Auth: &ingest.AuthConfig{BasicAuth: &ingest.BasicAuthConfig{Username: "otel", PasswordFile: "testdata/secrets/password"}},
			},
		},
	}
	require.Equal(t, want, f)

	// testdata/full.yaml sets every key to something other than its
	// default, so every field must differ from Default(). A new key needs a
	// line in full.yaml (and a row in docs/configuration.md).
	exempt := map[string]bool{
		"spanmetrics.metrics_expiration": true, // conflicts with series_expiration
		"remote_write[0].bearer_token":   true, // conflicts with basic_auth; set in remote_write[1]
		// One authentication method per receiver: bearer_token_file for
		// gRPC, basic_auth with password_file for HTTP.
		"otlp.grpc.auth.bearer_token":             true,
		"otlp.grpc.auth.basic_auth.username":      true,
		"otlp.grpc.auth.basic_auth.password":      true,
		"otlp.grpc.auth.basic_auth.password_file": true,
		"otlp.http.auth.bearer_token":             true,
		"otlp.http.auth.bearer_token_file":        true,
		"otlp.http.auth.basic_auth.password":      true,
	}
	for path, v := range leaves(reflect.ValueOf(f).Elem(), "") {
		if exempt[path] {
			continue
		}
		d := fieldByPath(t, reflect.ValueOf(Default()).Elem(), path)
		require.NotEqual(t, d.Interface(), v.Interface(), "testdata/full.yaml leaves %s at its default", path)
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "missing.yaml"))
	require.ErrorIs(t, err, fs.ErrNotExist)

	path := filepath.Join("testdata", "invalid.yaml")
	_, err = Load(path)
	requireErrorLines(t, err, []string{
		path + `:4: spanmetrics.histogram.explicit.buckets[2]: cannot parse "2.5x" as a duration`,
		path + `:4: spanmetrics.histogram.explicit.buckets[3]: cannot parse 2 as a duration: a unit is required`,
		path + `:5: spanmetrics.histogramm: unknown key (did you mean "histogram"?)`,
		path + `:9: spanmetrics.dimensions[0].defualt: unknown key (did you mean "default"?)`,
		path + `:12: exposition.const_labels: expected a mapping, got "cluster"`,
	})
}

// TestRecipeConnectorBlock pastes the spanmetrics connector block of the
// Jaeger SPM recipe's Collector config under spanmetrics: and the Prometheus
// exporter's namespace and const_labels under exposition:, and loads them.
func TestRecipeConnectorBlock(t *testing.T) {
	file := testutil.RecipeConfig(t, spanmetrics.NamingLegacy)
	require.Contains(t, string(file), "# Generate metrics from spans", "the block is pasted with its comment")

	f, err := Parse(file, "recipe.yaml")
	require.NoError(t, err, "\n%s", file)

	sm := f.SpanMetrics
	require.Equal(t, []time.Duration{
		2 * ms, 5 * ms, 10 * ms, 25 * ms, 50 * ms, 100 * ms, 250 * ms, 500 * ms,
		time.Second, 2500 * ms, 5 * time.Second, 10 * time.Second,
	}, sm.Histogram.Explicit.Buckets)
	require.Equal(t, []spanmetrics.Dimension{
		{Name: "http.method", Default: ptr("GET")},
		{Name: "http.status_code"},
		{Name: "k8s.deployment.name"},
		{Name: "k8s.namespace"},
	}, sm.Dimensions)
	require.Equal(t, "CUMULATIVE", sm.AggregationTemporality)
	// What the block does not set keeps spanwatch's defaults.
	def := spanmetrics.DefaultConfig()
	require.Equal(t, def.Histogram.Unit, sm.Histogram.Unit)
	require.Equal(t, def.MetricsFlushInterval, sm.MetricsFlushInterval)
	require.Equal(t, def.AggregationCardinalityLimit, sm.AggregationCardinalityLimit)

	require.Equal(t, spanmetrics.NamingConfig{
		Namespace:   "jaeger_spm",
		ConstLabels: map[string]string{"cluster": "production"},
		Naming:      spanmetrics.NamingLegacy,
	}, f.Exposition)
}

// TestDocs loads every yaml example in docs/configuration.md and checks that
// the reference mentions every key.
func TestDocs(t *testing.T) {
	data, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	doc := string(data)

	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	require.NotEmpty(t, blocks)
	for i, b := range blocks {
		_, err := Parse([]byte(b[1]), "docs example")
		require.NoError(t, err, "example %d:\n%s", i+1, b[1])
	}

	for path := range leaves(reflect.ValueOf(Default()).Elem(), "") {
		_, rel, _ := strings.Cut(path, ".")
		rel = regexp.MustCompile(`\[\d+\]`).ReplaceAllString(rel, "[]")
		require.Contains(t, doc, "`"+rel+"`", "docs/configuration.md does not describe %s", path)
	}
}

// leaves returns the key path of every scalar, list of scalars and map in v,
// following yaml tags; a list of structs contributes "list[0].key" paths, a
// nil pointer to a struct its zero value's keys.
func leaves(v reflect.Value, path string) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	t := v.Type()
	switch {
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		if v.IsNil() {
			v = reflect.New(t.Elem())
		}
		return leaves(v.Elem(), path)
	case t.Kind() == reflect.Struct && t != reflect.TypeFor[time.Time]():
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			sub := joinKey(path, name)
			if name == "" { // ",inline": the fields belong to this mapping
				sub = path
			}
			for p, l := range leaves(v.Field(i), sub) {
				out[p] = l
			}
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		e := reflect.New(t.Elem()).Elem()
		if v.Len() > 0 {
			e = v.Index(0)
		}
		for p, l := range leaves(e, joinIndex(path, 0)) {
			out[p] = l
		}
	default:
		out[path] = v
	}
	return out
}

func fieldByPath(t *testing.T, v reflect.Value, path string) reflect.Value {
	t.Helper()
	for _, part := range strings.Split(path, ".") {
		name, idx, isIdx := strings.Cut(part, "[")
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v = reflect.New(v.Type().Elem())
			}
			v = v.Elem()
		}
		var found bool
		v, found = fieldByKey(v, name)
		require.True(t, found, "no key %s in %s", name, path)
		if isIdx {
			require.Equal(t, "0]", idx)
			if v.Len() == 0 {
				v = reflect.New(v.Type().Elem()).Elem()
			} else {
				v = v.Index(0)
			}
		}
	}
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return reflect.Zero(v.Type())
	}
	return v
}

// fieldByKey finds the field with yaml key name in struct v, looking into
// inline fields too.
func fieldByKey(v reflect.Value, name string) (reflect.Value, bool) {
	for i := range v.NumField() {
		n, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if n == name {
			return v.Field(i), true
		}
		if n == "" && v.Field(i).Kind() == reflect.Struct {
			if f, ok := fieldByKey(v.Field(i), name); ok {
				return f, true
			}
		}
	}
	return reflect.Value{}, false
}

// TestOTLPAuthFailsClosed: a token from an unset variable leaves the auth
// block empty, which is an error, never a receiver without authentication.
func TestOTLPAuthFailsClosed(t *testing.T) {
	_, err := Parse([]byte("otlp:\n  http:\n    auth:\n      bearer_token: ${SPANWATCH_TEST_UNSET_TOKEN}\n"), "spanwatch.yml")
	require.EqualError(t, err, "spanwatch.yml:3: otlp.http.auth: set exactly one of bearer_token, bearer_token_file and basic_auth")
}
