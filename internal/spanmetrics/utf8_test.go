package spanmetrics

import (
	"bytes"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestAppendValidUTF8MatchesBytesToValidUTF8(t *testing.T) {
	for _, in := range []string{
		"", "plain", "é€😀", "\xff", "a\xffb", "\xff\xfe\xfd", "a\xc3", "\xc3(", "\xe2\x82", "\xe2\x82\xac\xe2",
		"\xed\xa0\x80",     // a surrogate
		"\xc0\xaf",         // an overlong encoding
		"\xf4\x90\x80\x80", // past U+10FFFF
		"\uFFFD\xff\uFFFD", // a valid U+FFFD beside invalid bytes
		"x\x80\x80y\x80",
	} {
		got := appendValidUTF8([]byte("prefix:"), []byte(in))
		require.Equal(t, "prefix:"+string(bytes.ToValidUTF8([]byte(in), []byte("\uFFFD"))), string(got), "%q", in)
		require.True(t, utf8.Valid(got))
	}
}

// TestInvalidUTF8IsReplacedOnBothPaths: the protobuf reader and the pdata
// path replace invalid sequences in every label source alike and count
// them; valid input counts nothing.
func TestInvalidUTF8IsReplacedOnBothPaths(t *testing.T) {
	td := makeTraces(
		spanSpec{service: "svc\xff", name: "GET /\xc3(", kind: ptrace.SpanKindServer, dur: time.Millisecond,
			attrs:    map[string]any{"http.method": "P\xe2\x82ST", "k8s.namespace": []any{"a\xffb"}},
			resAttrs: map[string]any{"service.namespace": "n\x80", "service.instance.id": "i\xfe", "service.version": "v\xff1", "host.name": "h\xff"}},
		spanSpec{service: "ok", name: "valid é", dur: time.Millisecond, attrs: map[string]any{"http.method": "GET"}},
	)
	req := marshal(t, td)
	wantRendered := func(a *Aggregator) []string { return rendered(a.Snapshot(t0)) }
	var outs [][]string
	for _, wire := range []bool{true, false} {
		reg := prometheus.NewPedanticRegistry()
		a, err := New(recipeConfig(), Options{Now: fixedClock(), Registerer: reg})
		require.NoError(t, err)
		if wire {
			_, err = a.ConsumeProto(req)
		} else {
			_, err = a.ConsumeTraces(td)
		}
		require.NoError(t, err)
		// span name, service.name, .namespace, .instance.id, .version,
		// http.method. The array attribute is rendered as JSON, which
		// already replaces invalid bytes.
		require.Equal(t, 6.0, testutil.ToFloat64(a.m.invalidUTF8), "wire=%v", wire)
		out := wantRendered(a)
		for _, line := range out {
			require.True(t, utf8.ValidString(line), "%q", line)
		}
		require.Contains(t, out, `http_method="P�ST",instance="i�",job="n�/svc�",k8s_namespace="[\"a\\ufffdb\"]",service_name="svc�",service_version="v�1",span_kind="SPAN_KIND_SERVER",span_name="GET /�(",status_code="STATUS_CODE_UNSET", count=1 buckets=[1 0 0 0 0 0 0 0 0 0 0 0 0] sum=1 native=3/0/0/[1]`)
		require.Contains(t, out, "target [{job n�/svc�} {instance i�} {service_version v�1} {host_name h�}]")
		outs = append(outs, out)
	}
	require.Equal(t, outs[0], outs[1])
}
