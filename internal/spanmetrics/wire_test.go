package spanmetrics

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// differentialConfig exercises every dimension path: string, defaulted,
// numeric, and resource-level values, with native histograms on.
func differentialConfig() Config {
	c := recipeConfig()
	c.Dimensions = append(c.Dimensions, Dimension{Name: "a"}, Dimension{Name: "b", Default: strp("dflt")})
	c.Histogram.Exponential = ExponentialConfig{Enabled: true, MaxSize: 20}
	c.AggregationCardinalityLimit = 50
	return c
}

// checkSame decodes data with the protobuf reader and with pdata followed by
// ConsumeTraces, and requires identical outcomes.
func checkSame(t *testing.T, data []byte) {
	t.Helper()
	wire := newTestAgg(t, differentialConfig(), NamingConfig{})
	ref := newTestAgg(t, differentialConfig(), NamingConfig{})
	n1, err1 := wire.ConsumeProto(data)
	req := ptraceotlp.NewExportRequest()
	err2 := req.UnmarshalProto(data)
	var n2 int
	if err2 == nil {
		n2, err2 = ref.ConsumeTraces(req.Traces())
	}
	if (err1 == nil) != (err2 == nil) {
		t.Fatalf("reader error %v, pdata error %v for %x", err1, err2, data)
	}
	if err1 != nil {
		require.ErrorIs(t, err1, ErrInvalidRequest)
		require.Zero(t, wire.ActiveSeries(), "a rejected request must count nothing")
		return
	}
	require.Equal(t, n2, n1)
	require.Equal(t, rendered(ref.Snapshot(t0)), rendered(wire.Snapshot(t0)), "input %x", data)
}

func seedRequests(t testing.TB) [][]byte {
	long := "x"
	for range 10 {
		long += long
	}
	tds := []ptrace.Traces{
		makeTraces(spanSpec{service: "checkout", name: "GET /cart", kind: ptrace.SpanKindServer, dur: 3 * time.Millisecond,
			attrs:    map[string]any{"http.method": "POST", "http.status_code": int64(200), "a": true},
			resAttrs: map[string]any{"service.version": "v1", "k8s.namespace": "shop", "service.instance.id": "pod-1", "host.name": "h"}}),
		makeTraces(spanSpec{name: "no service", dur: 0},
			spanSpec{service: "s", name: "x", status: ptrace.StatusCodeError, dur: time.Hour,
				attrs: map[string]any{"a": 1.5, "b": []any{"x", int64(1), 2.5, nil, map[string]any{"k": "v", "a": []byte{1}}}, "k8s.namespace": []byte{0, 1, 2}}},
			spanSpec{service: "s", name: "y", kind: ptrace.SpanKindClient, dur: 10 * time.Millisecond,
				attrs:    map[string]any{"a": 1e-7, "b": map[string]any{"z": 1e21, "y": "<&>"}, "http.method": ""},
				resAttrs: map[string]any{"service.namespace": "ns", "a": "res", "http.status_code": long}}),
	}
	var out [][]byte
	for _, td := range tds {
		out = append(out, marshal(t, td))
	}
	return out
}

func TestWireMatchesPdata(t *testing.T) {
	for _, data := range seedRequests(t) {
		checkSame(t, data)
	}
	cases := edgeCases()
	if os.Getenv("SPANWATCH_WRITE_FUZZ_CORPUS") != "" {
		dir := filepath.Join("testdata", "fuzz", "FuzzWireMatchesPdata")
		for name, data := range cases {
			f := "edge-" + strings.ReplaceAll(name, " ", "-")
			require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)), 0o644))
		}
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) { checkSame(t, data) })
	}
}

// edgeCases are hand-made inputs for the behaviours listed at the top of
// wire.go.
func edgeCases() map[string][]byte {
	tagb := func(num uint64, wt int) []byte { return binary.AppendUvarint(nil, num<<3|uint64(wt)) }
	lenf := func(num uint64, payload ...[]byte) []byte {
		var p []byte
		for _, x := range payload {
			p = append(p, x...)
		}
		b := tagb(num, wtLen)
		b = binary.AppendUvarint(b, uint64(len(p)))
		return append(b, p...)
	}
	vf := func(num, v uint64) []byte { return binary.AppendUvarint(tagb(num, wtVarint), v) }
	str := func(num uint64, s string) []byte { return lenf(num, []byte(s)) }
	kv := func(k string, v ...[]byte) []byte { return lenf(9, str(1, k), lenf(2, v...)) }
	span := func(fields ...[]byte) []byte {
		return lenf(1, lenf(2, lenf(2, fields...)))
	}
	cases := map[string][]byte{
		"empty":                   {},
		"empty resource spans":    lenf(1),
		"truncated":               {0x0a, 0x05, 0x01},
		"field zero":              {0x00},
		"wire type 7":             {0x0f},
		"wrong wire type":         vf(1, 3),
		"lone end group":          {0x0c},
		"kind twice":              span(str(5, "n"), vf(6, 2), vf(6, 3)),
		"kind high bits":          span(vf(6, 1<<32+3)),
		"unknown kind":            span(vf(6, 9)),
		"bad trace id":            span(str(1, "short")),
		"bad span id":             span(str(2, "123456789")),
		"empty ids":               span(str(1, ""), str(2, ""), str(4, "")),
		"status merged":           span(lenf(15, vf(3, 2), str(2, "m")), lenf(15, str(2, "x"))),
		"status deprecated field": span(lenf(15, vf(1, 2))),
		"flags as varint":         span(vf(16, 1)),
		"attr after name":         span(str(5, "n"), kv("a", str(1, "v1")), kv("a", str(1, "v2"))),
		"value merged":            span(lenf(9, str(1, "a"), lenf(2, str(1, "v1")), lenf(2))),
		"oneof last wins":         span(kv("a", str(1, "s"), vf(3, 7))),
		"strindex":                span(kv("a", str(1, "s"), vf(8, 1))),
		"key strindex":            span(lenf(9, vf(3, 1), str(1, "a"), lenf(2, str(1, "v")))),
		"bool 2":                  span(kv("a", vf(2, 2))),
		"int negative":            span(kv("a", vf(3, math.MaxUint64))),
		"double nan":              span(kv("a", append(tagb(4, wtI64), 0, 0, 0, 0, 0, 0, 0xf8, 0x7f))),
		"array twice":             span(kv("b", lenf(5, lenf(1, vf(3, 1))), lenf(5, lenf(1, vf(3, 2))))),
		"resource after scope": lenf(1, lenf(2, lenf(2, str(5, "n"))),
			lenf(1, lenf(1, str(1, "service.name"), lenf(2, str(1, "late"))))),
		"resource twice": lenf(1, lenf(1, lenf(1, str(1, "a"), lenf(2, str(1, "r1")))),
			lenf(1, lenf(1, str(1, "service.name"), lenf(2, str(1, "svc")))), lenf(2, lenf(2, str(5, "n")))),
		"deprecated scope spans only": lenf(1, lenf(1000, lenf(2, str(5, "old")))),
		"deprecated and new":          lenf(1, lenf(1000, lenf(2, str(5, "old"))), lenf(2, lenf(2, str(5, "new")))),
		"group closed":                append(span(str(5, "n")), 0x1b, 0x08, 0x01, 0x1c),
		"group unclosed":              append(span(str(5, "n")), 0x1b, 0x08, 0x01),
		"empty group then byte":       append([]byte{0x1b, 0x1c}, span(str(5, "n"))...),
		"empty group at end":          append(span(str(5, "n")), 0x1b, 0x1c),
		"overlong varint":             append(tagb(1, wtLen), 0x80, 0x80, 0x00),
		"ten byte varint":             append(tagb(2, wtVarint), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
		"eleven byte varint":          append(tagb(2, wtVarint), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"big field number":            append(binary.AppendUvarint(nil, (1<<32+1)<<3|2), 0),
		"negative field number":       append(binary.AppendUvarint(nil, (1<<31)<<3), 0),
		"event bad time":              span(lenf(11, vf(1, 1))),
		"link bad id":                 span(lenf(13, str(2, "x"))),
		"entity ref":                  lenf(1, lenf(1, lenf(3, str(1, "u"), str(3, "k"), vf(5, 1)))),
		"entity ref bad":              lenf(1, lenf(1, lenf(3, vf(1, 1)))),
		"scope attrs":                 lenf(1, lenf(2, lenf(1, str(1, "n"), lenf(3, str(1, "k"), lenf(2, vf(7, 1)))))),
		"three byte length":           span(str(5, strings.Repeat("n", 20000))),
		"overlong two byte length":    span(append(tagb(5, wtLen), 0x81, 0x00, 'n')),
		"overlong trace id length":    span(append(append(tagb(1, wtLen), 0x90, 0x00), make([]byte, 16)...)),
		"truncated two byte length":   span(append(tagb(5, wtLen), 0x85)),
		"truncated end time":          span(append(tagb(8, wtI64), 1, 2, 3)),
		"two byte kind":               span(vf(6, 200)),
	}
	long := strings.Repeat("v", 200)
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for name, kvb := range map[string][]byte{
		"kv value first":     cat(lenf(2, str(1, "GET")), str(1, "http.method")),
		"kv two keys":        cat(str(1, "a"), lenf(2, str(1, "x")), str(1, "http.method")),
		"kv two values":      cat(lenf(2, str(1, "x")), str(1, "a"), lenf(2, vf(3, 5))),
		"kv key only":        cat(str(1, "a")),
		"kv value only":      cat(lenf(2, str(1, "x"))),
		"kv empty value":     cat(str(1, "a"), lenf(2)),
		"kv long string":     cat(str(1, "a"), lenf(2, str(1, long))),
		"kv long key":        cat(str(1, long), lenf(2, str(1, "x"))),
		"kv int trailing":    cat(str(1, "a"), lenf(2, vf(3, 5), vf(3, 6))),
		"kv short double":    cat(str(1, "a"), lenf(2, append(tagb(4, wtI64), 1, 2, 3))),
		"kv double":          cat(str(1, "a"), lenf(2, append(tagb(4, wtI64), 0, 0, 0, 0, 0, 0, 0xf0, 0x3f))),
		"kv string overflow": cat(str(1, "a"), lenf(2, []byte{0x0a, 0x05, 'x'})),
		"kv bool big":        cat(str(1, "a"), lenf(2, vf(2, 1<<40))),
		"kv truncated":       cat([]byte{0x0a, 0x05, 'a'}),
	} {
		cases[name] = span(lenf(9, kvb))
		cases["resource "+name] = lenf(1, lenf(1, lenf(1, kvb)), lenf(2, lenf(2, str(5, "n"))))
	}
	deep := lenf(2) // empty AnyValue
	for range 60 {
		deep = lenf(2, lenf(5, lenf(1, deep[2:])))
	}
	cases["deep"] = span(lenf(9, str(1, "a"), deep))
	return cases
}

// FuzzWireMatchesPdata holds the protobuf reader to pdata's decoder: for any
// input both accept with identical series, or both reject.
// Seeds: testdata/fuzz/FuzzWireMatchesPdata plus seedRequests.
func FuzzWireMatchesPdata(f *testing.F) {
	for _, s := range seedRequests(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkSame(t, data) })
}

func TestFuzzCorpusCommitted(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzWireMatchesPdata"))
	require.NoError(t, err)
	require.NotEmpty(t, entries)
}
