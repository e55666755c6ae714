package app_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// TestDeepNestingRejectedInBothEncodings: attribute values nested past the
// limit are a 400 with a message in protobuf and JSON alike, and one level
// less is accepted in both.
func TestDeepNestingRejectedInBothEncodings(t *testing.T) {
	a := startApp(t, nil)
	url := "http://" + a.OTLPHTTPAddr().String() + "/v1/traces"
	post := func(ct string, body []byte) (int, string) {
		resp, err := http.Post(url, ct, bytes.NewReader(body))
		require.NoError(t, err)
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(out)
	}
	nested := func(levels int) ptrace.Traces {
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName("op")
		v := sp.Attributes().PutEmpty("deep")
		for range levels {
			v = v.SetEmptySlice().AppendEmpty()
		}
		v.SetStr("leaf")
		return td
	}
	// An array level is two messages (ArrayValue, AnyValue): 49 levels put
	// the leaf at depth 99, the deepest allowed; 50 at depth 101.
	for levels, ok := range map[int]bool{49: true, 50: false, 2000: false} {
		req := ptraceotlp.NewExportRequestFromTraces(nested(levels))
		pb, err := req.MarshalProto()
		require.NoError(t, err)
		js, err := req.MarshalJSON()
		require.NoError(t, err)
		for ct, body := range map[string][]byte{"application/x-protobuf": pb, "application/json": js} {
			code, msg := post(ct, body)
			if ok {
				require.Equal(t, http.StatusOK, code, "%s %d: %s", ct, levels, msg)
				continue
			}
			require.Equal(t, http.StatusBadRequest, code, "%s %d", ct, levels)
			require.Contains(t, msg, "cannot decode OTLP trace request")
			require.Contains(t, msg, "depth", "%s %d", ct, levels)
		}
	}
	// 50,000 JSON levels, the way a hostile client writes them.
	deep := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"op","attributes":[{"key":"k","value":` +
		strings.Repeat(`{"arrayValue":{"values":[`, 16667) + `{"stringValue":"x"}` + strings.Repeat(`]}}`, 16667) + `}]}]}]}]}`
	code, msg := post("application/json", []byte(deep))
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, msg, "request nested too deep")
}
