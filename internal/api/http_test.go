package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func jsonString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return string(b)
}

func TestMethodsAndPaths(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	endpoints := []string{
		"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels", "/api/v1/label/job/values",
		"/api/v1/metadata", "/api/v1/query_exemplars", "/api/v1/status/buildinfo", "/api/v1/format_query",
	}
	for _, ep := range endpoints {
		for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
			t.Run(method+ep, func(t *testing.T) {
				rec, env := do(t, h, method, ep, nil)
				require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
				require.Equal(t, "GET, HEAD, POST, OPTIONS", rec.Header().Get("Allow"))
				require.Equal(t, "error", env.Status)
				require.Equal(t, "bad_data", env.ErrorType)
				require.Contains(t, env.Error, "method "+method+" not allowed")
			})
		}
		t.Run("OPTIONS"+ep, func(t *testing.T) {
			rec, _ := do(t, h, http.MethodOptions, ep, nil)
			require.Equal(t, http.StatusNoContent, rec.Code)
			require.Equal(t, "GET, HEAD, POST, OPTIONS", rec.Header().Get("Allow"))
		})
	}
	for _, path := range []string{"/api/v1/", "/api/v1/targets", "/api/v1/admin/tsdb/snapshot", "/api/v1/query/", "/api/v1/label/job"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run("unknown "+method+path, func(t *testing.T) {
				rec, env := do(t, h, method, path, nil)
				require.Equal(t, http.StatusNotFound, rec.Code)
				require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
				require.Equal(t, "error", env.Status)
				require.Equal(t, "not_found", env.ErrorType)
				require.Contains(t, env.Error, path)
			})
		}
	}
	t.Run("form POST parameters join the URL's", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/query?time=1704067500", strings.NewReader(url.Values{"query": {"time()"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
		require.JSONEq(t, `{"status":"success","data":{"resultType":"scalar","result":[1704067500,"1704067500"]}}`, rec.Body.String())
	})
	t.Run("a malformed form is bad data", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/query", strings.NewReader("query=%zz"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusBadRequest, rec.Code)
		require.Contains(t, rec.Body.String(), `"errorType":"bad_data","error":"error parsing form values:`)
	})
}

func TestGzip(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	for _, tc := range []struct {
		acceptEncoding string
		gzipped        bool
	}{
		{"", false},
		{"gzip", true},
		{"gzip, deflate, br", true},
		{"br;q=1.0, GZIP;q=0.5", true},
		{"*", true},
		{"gzip;q=0", false},
		{"gzip;q=0.000, *", false},
		{"identity", false},
		{"deflate", false},
	} {
		for _, path := range []string{"/api/v1/query?query=traces_span_metrics_calls_total", "/api/v1/query?query=sum("} {
			t.Run(tc.acceptEncoding+path, func(t *testing.T) {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				if tc.acceptEncoding != "" {
					req.Header.Set("Accept-Encoding", tc.acceptEncoding)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				require.Equal(t, "Accept-Encoding", rec.Header().Get("Vary"))
				body := rec.Body.Bytes()
				if tc.gzipped {
					require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
					zr, err := gzip.NewReader(bytes.NewReader(body))
					require.NoError(t, err)
					body, err = io.ReadAll(zr)
					require.NoError(t, err)
				} else {
					require.Empty(t, rec.Header().Get("Content-Encoding"))
				}
				var env envelope
				require.NoError(t, json.Unmarshal(body, &env), "body: %q", body)
				require.NotEmpty(t, env.Status)
			})
		}
	}
}

func TestMultipartForm(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	require.NoError(t, mw.WriteField("query", "time()"))
	require.NoError(t, mw.WriteField("time", "1704067500"))
	require.NoError(t, mw.Close())
	req := httptest.NewRequest(http.MethodPost, "/api/v1/query", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body.String())
	require.JSONEq(t, `{"status":"success","data":{"resultType":"scalar","result":[1704067500,"1704067500"]}}`, rec.Body.String())

	t.Run("too large", func(t *testing.T) {
		big := "query=" + strings.Repeat("1", maxFormBytes)
		req := httptest.NewRequest(http.MethodPost, "/api/v1/query", strings.NewReader(big))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusBadRequest, rec.Code)
		require.Contains(t, rec.Body.String(), `"errorType":"bad_data","error":"error parsing form values:`)
	})
}
