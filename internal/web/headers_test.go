package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func TestSecurityHeaders(t *testing.T) {
	h := SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/query", nil))
	require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
	require.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
	require.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"))

	// A header set before (the web configuration file's headers) wins.
	rec = httptest.NewRecorder()
	rec.Header().Set("X-Frame-Options", "sameorigin")
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, []string{"sameorigin"}, rec.Header().Values("X-Frame-Options"))
}

// TestUISecurityHeaders: the app's page gets a policy that allows only its
// own origin and no inline script or style; the placeholder, which has an
// inline stylesheet and no script, a policy of its own.
func TestUISecurityHeaders(t *testing.T) {
	app := newUIHandler(fstest.MapFS{
		"placeholder.html": {Data: []byte("placeholder")},
		"dist/index.html":  {Data: []byte("<!doctype html><script src=/app.js></script>")},
		"dist/app.js":      {Data: []byte("console.log(1)")},
	})
	placeholder := newUIHandler(fstest.MapFS{"placeholder.html": {Data: []byte("<style>p{}</style>")}})
	for _, tt := range []struct {
		name   string
		h      http.Handler
		target string
		csp    string
	}{
		{"app page", app, "/", uiCSP},
		{"app route", app, "/service/checkout", uiCSP},
		{"asset", app, "/app.js", ""},
		{"placeholder", placeholder, "/", placeholderCSP},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := serveUI(t, tt.h, http.MethodGet, tt.target, nil)
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, tt.csp, rec.Header().Get("Content-Security-Policy"))
			require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
			require.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
			require.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"))
		})
	}
	require.Contains(t, uiCSP, "frame-ancestors 'none'")
	require.Contains(t, uiCSP, "script-src 'self';")
	require.NotContains(t, uiCSP, "unsafe")
	require.Contains(t, placeholderCSP, "default-src 'none'")

	// A policy from the web configuration file wins.
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Security-Policy", "default-src 'self'")
	app.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, []string{"default-src 'self'"}, rec.Header().Values("Content-Security-Policy"))
}

func TestCompileCORSOrigin(t *testing.T) {
	re, err := CompileCORSOrigin("")
	require.NoError(t, err)
	require.Nil(t, re)
	re, err = CompileCORSOrigin(`https?://grafana\.example\.com`)
	require.NoError(t, err)
	require.True(t, re.MatchString("https://grafana.example.com"))
	require.False(t, re.MatchString("https://grafana.example.com.evil.net"), "anchored at the end")
	require.False(t, re.MatchString("https://evil.net/https://grafana.example.com"), "anchored at the start")
	_, err = CompileCORSOrigin("(")
	require.ErrorContains(t, err, `invalid CORS origin regular expression "("`)
}

func TestCORS(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		_, _ = w.Write([]byte("data"))
	})
	call := func(h http.Handler, method, path, origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	t.Run("off", func(t *testing.T) {
		h := CORS(nil, "/api/v1/", next)
		rec := call(h, http.MethodGet, "/api/v1/query", "https://grafana.example.com")
		require.Equal(t, http.StatusOK, rec.Code)
		for k := range rec.Header() {
			require.NotContains(t, k, "Access-Control-")
		}
	})

	grafana, err := CompileCORSOrigin(`https://grafana\.example\.com`)
	require.NoError(t, err)
	any, err := CompileCORSOrigin(".*")
	require.NoError(t, err)
	for _, tt := range []struct {
		name         string
		origin       string
		re           string
		method, path string
		code         int
		allowOrigin  string
		allowMethods string
	}{
		{"matching origin", "https://grafana.example.com", "grafana", http.MethodGet, "/api/v1/query", 200, "https://grafana.example.com", "GET, POST, OPTIONS"},
		{"other origin", "https://evil.example.net", "grafana", http.MethodGet, "/api/v1/query", 200, "", "GET, POST, OPTIONS"},
		{"no origin", "", "grafana", http.MethodGet, "/api/v1/query", 200, "", ""},
		{"preflight", "https://grafana.example.com", "grafana", http.MethodOptions, "/api/v1/compare", 204, "https://grafana.example.com", "GET, POST, OPTIONS"},
		{"any origin", "https://anything.example", "any", http.MethodPost, "/api/v1/query", 200, "*", "GET, POST, OPTIONS"},
		{"not the API", "https://grafana.example.com", "grafana", http.MethodGet, "/metrics", 200, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			re := grafana
			if tt.re == "any" {
				re = any
			}
			rec := call(CORS(re, "/api/v1/", next), tt.method, tt.path, tt.origin)
			require.Equal(t, tt.code, rec.Code)
			require.Equal(t, tt.allowOrigin, rec.Header().Get("Access-Control-Allow-Origin"))
			require.Equal(t, tt.allowMethods, rec.Header().Get("Access-Control-Allow-Methods"))
			if tt.path != "/metrics" {
				require.Equal(t, "Origin", rec.Header().Get("Vary"))
			}
		})
	}
}
