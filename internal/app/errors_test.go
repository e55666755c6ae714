package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/spanwatch/spanwatch/internal/app"
)

// TestEveryErrorCarriesAMessage walks the error paths of every port (OTLP
// ingest, the API and compare, lifecycle, UI, exposition) and requires a
// message in each 4xx/5xx body, in the format of its endpoint: a
// google.rpc.Status for OTLP, the Prometheus envelope with errorType and
// error for the API, text elsewhere.
func TestEveryErrorCarriesAMessage(t *testing.T) {
	withLifecycle := startApp(t, nil, func(o *app.Options) { o.EnableLifecycle = true })
	a := startApp(t, nil)
	otlp := "http://" + a.OTLPHTTPAddr().String()
	web := "http://" + a.WebAddr().String()
	expo := "http://" + a.MetricsAddr().String()
	const (
		status   = "status"   // google.rpc.Status in the request's encoding
		envelope = "envelope" // Prometheus API error envelope
		text     = "text"
	)
	cases := []struct {
		name, method, url, ct, body string
		code                        int
		format                      string
		errorType                   string // envelope only
	}{
		{"otlp GET", "GET", otlp + "/v1/traces", "", "", 405, status, ""},
		{"otlp content type", "POST", otlp + "/v1/traces", "text/plain", "x", 415, status, ""},
		{"otlp empty json", "POST", otlp + "/v1/traces", "application/json", "", 400, status, ""},
		{"otlp bad json", "POST", otlp + "/v1/traces", "application/json", "{", 400, status, ""},
		{"otlp bad protobuf", "POST", otlp + "/v1/traces", "application/x-protobuf", "\x0a\xff", 400, status, ""},
		{"otlp deep json", "POST", otlp + "/v1/traces", "application/json", strings.Repeat("[", 300), 400, status, ""},
		{"otlp unknown path", "POST", otlp + "/v1/metrics", "application/x-protobuf", "", 404, text, ""},
		{"query without query", "GET", web + "/api/v1/query", "", "", 400, envelope, "bad_data"},
		{"query parse error", "GET", web + "/api/v1/query?query=up%7B", "", "", 400, envelope, "bad_data"},
		{"query bad time", "GET", web + "/api/v1/query?query=up&time=x", "", "", 400, envelope, "bad_data"},
		{"range too many points", "GET", web + "/api/v1/query_range?query=up&start=0&end=1e12&step=1", "", "", 400, envelope, "bad_data"},
		{"range bad step", "GET", web + "/api/v1/query_range?query=up&start=0&end=1&step=0", "", "", 400, envelope, "bad_data"},
		{"series without match", "GET", web + "/api/v1/series", "", "", 400, envelope, "bad_data"},
		{"bad label name", "GET", web + "/api/v1/label/%ff/values", "", "", 400, envelope, "bad_data"},
		{"bad form", "POST", web + "/api/v1/query", "application/x-www-form-urlencoded", "%zz", 400, envelope, "bad_data"},
		{"bad multipart", "POST", web + "/api/v1/query", "multipart/form-data; boundary=x", "junk", 400, envelope, "bad_data"},
		{"api method", "DELETE", web + "/api/v1/query", "", "", 405, envelope, "bad_data"},
		{"api unknown endpoint", "GET", web + "/api/v1/nope", "", "", 404, envelope, "not_found"},
		{"rules bad type", "GET", web + "/api/v1/rules?type=x", "", "", 400, envelope, "bad_data"},
		{"compare method", "GET", web + "/api/v1/compare", "", "", 405, envelope, "bad_data"},
		{"compare empty body", "POST", web + "/api/v1/compare", "application/json", "", 400, envelope, "bad_data"},
		{"compare bad json", "POST", web + "/api/v1/compare", "application/json", "{", 400, envelope, "bad_data"},
		{"compare unknown field", "POST", web + "/api/v1/compare", "application/json", `{"x":1}`, 400, envelope, "bad_data"},
		{"compare no service", "POST", web + "/api/v1/compare", "application/json", `{}`, 400, envelope, "bad_data"},
		{"compare bad matchers", "POST", web + "/api/v1/compare", "application/json",
			`{"service":"s","baseline":{"matchers":"a=="},"candidate":{"matchers":"b=\"1\""}}`, 400, envelope, "bad_data"},
		{"compare __name__ matcher", "POST", web + "/api/v1/compare", "application/json",
			`{"service":"s","baseline":{"matchers":"service_version=\"1\""},"candidate":{"matchers":"__name__=\"x\""}}`, 400, envelope, "bad_data"},
		{"compare __name__ regexp", "POST", web + "/api/v1/compare", "application/json",
			`{"service":"s","baseline":{"matchers":"__name__=~\"x.*\""},"candidate":{"matchers":"b=\"1\""}}`, 400, envelope, "bad_data"},
		{"compare too large", "POST", web + "/api/v1/compare", "application/json", `{"service":"` + strings.Repeat("x", 2<<20) + `"}`, 400, envelope, "bad_data"},
		{"reload disabled", "POST", web + "/-/reload", "", "", 403, text, ""},
		{"ui method", "POST", web + "/", "", "", 405, text, ""},
		{"ui missing asset", "GET", web + "/assets/missing.js", "", "", 404, text, ""},
		{"exposition unknown path", "GET", expo + "/nope", "", "", 404, text, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			require.NoError(t, err)
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, tc.code, resp.StatusCode, "%s", body)
			require.NotEmpty(t, bytes.TrimSpace(body), "an error carries a message")
			switch tc.format {
			case status:
				st := &spb.Status{}
				if resp.Header.Get("Content-Type") == "application/x-protobuf" {
					require.NoError(t, proto.Unmarshal(body, st))
				} else {
					require.NoError(t, protojson.Unmarshal(body, st), "%s", body)
				}
				require.NotEmpty(t, st.GetMessage())
				require.NotZero(t, st.GetCode())
			case envelope:
				var env struct{ Status, ErrorType, Error string }
				require.NoError(t, json.Unmarshal(body, &env), "%s", body)
				require.Equal(t, "error", env.Status)
				require.Equal(t, tc.errorType, env.ErrorType, env.Error)
				require.NotEmpty(t, env.Error)
			}
		})
	}
	t.Run("reload failure", func(t *testing.T) {
		// A reload of the embedded defaults succeeds; the path that fails
		// is covered with a bad file in TestRulesAPIAndReload. Here: the
		// success answer is not empty either.
		resp, err := http.Post("http://"+withLifecycle.WebAddr().String()+"/-/reload", "", nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		require.NotEmpty(t, body)
	})
	t.Run("empty protobuf is an empty request", func(t *testing.T) {
		// As the Collector answers: a zero-length protobuf body is a valid,
		// empty ExportTraceServiceRequest.
		resp, err := http.Post(otlp+"/v1/traces", "application/x-protobuf", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})
}
