package spanmetrics

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// nestedTraces has one attribute, at the place where, nesting levels deep;
// each level is an array when the pattern's bit is set, else a kvlist.
func nestedTraces(where string, levels int, pattern uint64) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ss := rs.ScopeSpans().AppendEmpty()
	sp := ss.Spans().AppendEmpty()
	sp.SetName("op")
	var m pcommon.Map
	switch where {
	case "resource":
		m = rs.Resource().Attributes()
	case "scope":
		m = ss.Scope().Attributes()
	case "span":
		m = sp.Attributes()
	case "event":
		m = sp.Events().AppendEmpty().Attributes()
	case "link":
		m = sp.Links().AppendEmpty().Attributes()
	}
	v := m.PutEmpty("deep")
	for i := range levels {
		if pattern>>(i%64)&1 == 1 {
			v = v.SetEmptySlice().AppendEmpty()
		} else {
			v = v.SetEmptyMap().PutEmpty("k")
		}
	}
	v.SetStr("leaf")
	return td
}

// TestJSONNestingLimitMatchesProtobuf: for nestings on either side of the
// limit, in every place attributes occur, a request is refused in JSON
// exactly when the protobuf reader (and pdata's protobuf decoder) refuses
// it.
func TestJSONNestingLimitMatchesProtobuf(t *testing.T) {
	accepted, rejected := 0, 0
	for _, where := range []string{"resource", "scope", "span", "event", "link"} {
		for _, pattern := range []uint64{0, ^uint64(0), 0x5555555555555555, 0x3333333333333333} {
			for levels := 30; levels <= 52; levels++ {
				td := nestedTraces(where, levels, pattern)
				req := ptraceotlp.NewExportRequestFromTraces(td)
				pb, err := req.MarshalProto()
				require.NoError(t, err)
				js, err := req.MarshalJSON()
				require.NoError(t, err)
				a := newTestAgg(t, DefaultConfig(), NamingConfig{})
				_, protoErr := a.ConsumeProto(pb)
				pdataErr := ptraceotlp.NewExportRequest().UnmarshalProto(pb)
				require.Equal(t, pdataErr == nil, protoErr == nil)
				jsonErr := CheckJSONNesting(js)
				name := fmt.Sprintf("%s/levels=%d/pattern=%x", where, levels, pattern)
				require.Equal(t, protoErr == nil, jsonErr == nil, "%s: protobuf %v, JSON %v", name, protoErr, jsonErr)
				if jsonErr != nil {
					require.ErrorIs(t, jsonErr, ErrTooDeep)
					rejected++
				} else {
					require.NoError(t, ptraceotlp.NewExportRequest().UnmarshalJSON(js), name)
					accepted++
				}
			}
		}
	}
	require.Positive(t, accepted)
	require.Positive(t, rejected)
}

func TestCheckJSONNesting(t *testing.T) {
	deep := func(n int, open, close string) string { return strings.Repeat(open, n) + strings.Repeat(close, n) }
	for name, tc := range map[string]struct {
		in string
		ok bool
	}{
		"empty":                {"", true},
		"malformed":            {`{"resourceSpans":[{`, true},
		"unknown field deep":   {`{"x":` + deep(MaxJSONNesting-1, "[", "]") + `}`, true},
		"unknown field deeper": {`{"x":` + deep(MaxJSONNesting, "[", "]") + `}`, false},
		"50000 arrays":         {deep(50000, "[", "]"), false},
		"50000 objects":        {deep(50000, `{"a":`, "}"), false},
		"attributes in string": {`{"s":"\"attributes\":[` + strings.Repeat("{", 300) + `"}`, true},
		"at the limit":         {`{"attributes":[` + deep(MaxAttributeDepth, `{"value":`, "}") + `]}`, true},
		"past the limit":       {`{"attributes":[` + deep(MaxAttributeDepth+1, `{"value":`, "}") + `]}`, false},
		"escaped quote":        {`{"s":"x\\\"\\","attributes":[` + deep(MaxAttributeDepth+1, `{"value":`, "}") + `]}`, false},
		"key not value":        {`{"k":"attributes","v":[` + deep(MaxAttributeDepth+1, `{"value":`, "}") + `]}`, true},
	} {
		t.Run(name, func(t *testing.T) {
			err := CheckJSONNesting([]byte(tc.in))
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrTooDeep)
			}
		})
	}
}

func BenchmarkCheckJSONNesting(b *testing.B) {
	var specs []spanSpec
	for i := range 1000 {
		specs = append(specs, spanSpec{service: fmt.Sprint("svc", i%10), name: fmt.Sprint("GET /api/", i%25),
			attrs: map[string]any{"http.method": "GET", "http.status_code": int64(200), "http.route": "/api/x"}})
	}
	js, err := ptraceotlp.NewExportRequestFromTraces(makeTraces(specs...)).MarshalJSON()
	require.NoError(b, err)
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckJSONNesting(js); err != nil {
			b.Fatal(err)
		}
	}
}
