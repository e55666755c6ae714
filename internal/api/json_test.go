package api

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/require"
)

func TestAppendString(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quo"te`, `back\slash`, "tab\tnew\nline\rcr", "\b\f\x00\x1f\x7f",
		"<html>&amp;", "ünïcødé ✓", "line\u2028sep\u2029", "bad\xffutf8\xc3", "GET /cart?q=1",
	} {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendString(nil, s)), "%q", s)
	}
}

func TestAppendFloat(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0, `"0"`},
		{math.Copysign(0, -1), `"-0"`},
		{1, `"1"`},
		{-2.5, `"-2.5"`},
		{600.0000000000001, `"600.0000000000001"`},
		{1e-6, `"0.000001"`},
		{9.99e-7, `"9.99e-07"`},
		{1e20, `"100000000000000000000"`},
		{1e21, `"1e+21"`},
		{math.NaN(), `"NaN"`},
		{math.Inf(1), `"+Inf"`},
		{math.Inf(-1), `"-Inf"`},
	} {
		require.Equal(t, tc.want, string(appendFloat(nil, tc.f)), "%v", tc.f)
	}
}

func TestAppendTimestamp(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		want string
	}{
		{0, "0"},
		{5, "0.005"},
		{50, "0.050"},
		{1500, "1.500"},
		{-1500, "-1.500"},
		{1704067800000, "1704067800"},
		{1704067800123, "1704067800.123"},
	} {
		require.Equal(t, tc.want, string(appendTimestamp(nil, tc.ms)), "%d", tc.ms)
	}
}

func TestResultJSON(t *testing.T) {
	fh := &histogram.FloatHistogram{
		Schema:          0,
		ZeroThreshold:   0.001,
		ZeroCount:       2,
		Count:           9,
		Sum:             -1.5,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 3}},
		PositiveBuckets: []float64{1, 0, 3}, // (0.5,1], (1,2] empty, (2,4]
		NegativeSpans:   []histogram.Span{{Offset: 0, Length: 1}},
		NegativeBuckets: []float64{3}, // [-1,-0.5)
	}
	ls := labels.FromStrings("__name__", "x", "a", `"<b>"`)
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"nil matrix", resultJSON{promql.Matrix(nil)}, `[]`},
		{"nil vector", resultJSON{promql.Vector(nil)}, `[]`},
		{"scalar", resultJSON{promql.Scalar{T: 1500, V: math.NaN()}}, `[1.5,"NaN"]`},
		{"string", resultJSON{promql.String{T: 1000, V: "s"}}, `[1,"s"]`},
		{
			"float sample", resultJSON{promql.Vector{{T: 1000, F: 2, Metric: ls}}},
			`[{"metric":{"__name__":"x","a":"\"\u003cb\u003e\""},"value":[1,"2"]}]`,
		},
		{
			"histogram sample", resultJSON{promql.Vector{{T: 1000, H: fh, Metric: labels.EmptyLabels()}}},
			`[{"metric":{},"histogram":[1,{"count":"9","sum":"-1.5","buckets":[[1,"-1","-0.5","3"],[3,"-0.001","0.001","2"],[0,"0.5","1","1"],[0,"2","4","3"]]}]}]`,
		},
		{
			"series with floats and histograms", resultJSON{promql.Matrix{{
				Metric:     labels.FromStrings("a", "b"),
				Floats:     []promql.FPoint{{T: 1000, F: 1}, {T: 2001, F: math.Inf(1)}},
				Histograms: []promql.HPoint{{T: 3000, H: &histogram.FloatHistogram{Count: 0, Sum: 0}}},
			}, {Metric: labels.FromStrings("a", "c")}}},
			`[{"metric":{"a":"b"},"values":[[1,"1"],[2.001,"+Inf"]],"histograms":[[3,{"count":"0","sum":"0"}]]},{"metric":{"a":"c"}}]`,
		},
		{"label sets", labelSetsJSON{labels.FromStrings("a", "1"), labels.EmptyLabels()}, `[{"a":"1"},{}]`},
		{"no label sets", labelSetsJSON{}, `[]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(b))
		})
	}
}
