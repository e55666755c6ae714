package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"NS": "jaeger_spm", "EMPTY": "", "A_1": "x"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		in, want string
		changed  bool
		err      string
	}{
		{in: "plain", want: "plain"},
		{in: "${NS}", want: "jaeger_spm", changed: true},
		{in: "$NS", want: "jaeger_spm", changed: true},
		{in: "${env:NS}", want: "jaeger_spm", changed: true},
		{in: "pre-${NS}-post", want: "pre-jaeger_spm-post", changed: true},
		{in: "$NS.suffix", want: "jaeger_spm.suffix", changed: true},
		{in: "$A_1$A_1", want: "xx", changed: true},
		{in: "${UNSET}", want: "", changed: true},
		{in: "$UNSET", want: "", changed: true},
		{in: "${UNSET:-fallback}", want: "fallback", changed: true},
		{in: "${EMPTY:-fallback}", want: "fallback", changed: true},
		{in: "${NS:-fallback}", want: "jaeger_spm", changed: true},
		{in: "${env:UNSET:-a:b}", want: "a:b", changed: true},
		{in: "$$NS", want: "$NS", changed: true},
		{in: "$${NS}", want: "${NS}", changed: true},
		{in: "cost: 5$", want: "cost: 5$"},
		{in: "^foo$|$1 $ x", want: "^foo$|$1 $ x"},
		{in: "${NS", err: `unterminated "${" in "${NS"`},
		{in: "${}", err: `invalid environment reference "${}"`},
		{in: "${1X}", err: `invalid environment reference "${1X}"`},
		{in: "${A-B}", err: `invalid environment reference "${A-B}"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, changed, err := expandEnv(tc.in, lookup)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.changed, changed)
		})
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"histogram", "dimensions", "exclude_dimensions", "metrics_expiration", "namespace"}
	for in, want := range map[string]string{
		"histogramm":         "histogram",
		"histgram":           "histogram",
		"dimension":          "dimensions",
		"exclude-dimensions": "exclude_dimensions",
		"Namespace":          "namespace",
		"metric_expiration":  "metrics_expiration",
		"buckets":            "",
		"ab":                 "",
	} {
		require.Equal(t, want, suggest(in, keys), in)
	}
}
