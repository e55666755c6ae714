package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func serveUI(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestUIPlaceholderWithoutBundle(t *testing.T) {
	h := newUIHandler(fstest.MapFS{
		"placeholder.html": {Data: []byte("<p>build the UI with make ui</p>")},
	})
	for _, target := range []string{"/", "/service/checkout?range=1h", "/compare"} {
		t.Run(target, func(t *testing.T) {
			rec := serveUI(t, h, http.MethodGet, target, nil)
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
			require.Contains(t, rec.Body.String(), "make ui")
		})
	}
	require.Equal(t, http.StatusNotFound, serveUI(t, h, http.MethodGet, "/app.js", nil).Code)
}

// The real embedded assets: whatever was built, "/" answers HTML that is
// either the app or the placeholder.
func TestUIHandlerEmbedded(t *testing.T) {
	rec := serveUI(t, UIHandler(), http.MethodGet, "/", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Contains(t, rec.Body.String(), "spanwatch")
}

func TestUIBundle(t *testing.T) {
	h := newUIHandler(fstest.MapFS{
		"placeholder.html":      {Data: []byte("placeholder")},
		"dist/index.html":       {Data: []byte("<!doctype html><script src=/app.js></script>")},
		"dist/app.js":           {Data: []byte("console.log(1)")},
		"dist/app.css":          {Data: []byte("body{}")},
		"dist/uPlot.min.css":    {Data: []byte(".uplot{}")},
		"dist/favicon.svg":      {Data: []byte("<svg/>")},
		"dist/sub/extra.js.map": {Data: []byte("{}")},
	})
	tests := []struct {
		target      string
		code        int
		contentType string
		body        string
	}{
		{"/", 200, "text/html; charset=utf-8", "app.js"},
		{"/index.html", 200, "text/html; charset=utf-8", "app.js"},
		{"/service/checkout?range=1h", 200, "text/html; charset=utf-8", "app.js"},
		{"/compare?service=a%22b", 200, "text/html; charset=utf-8", "app.js"},
		{"/app.js", 200, "text/javascript; charset=utf-8", "console.log"},
		{"/app.css", 200, "text/css; charset=utf-8", "body"},
		{"/uPlot.min.css", 200, "text/css; charset=utf-8", ".uplot"},
		{"/favicon.svg", 200, "image/svg+xml", "svg"},
		{"/sub/extra.js.map", 200, "application/json", "{}"},
		{"/missing.js", 404, "", ""},
		{"/api/v2/whatever", 404, "", ""},
		{"/../../etc/passwd", 200, "text/html; charset=utf-8", "app.js"}, // cleaned; never outside the bundle
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			rec := serveUI(t, h, http.MethodGet, tt.target, nil)
			require.Equal(t, tt.code, rec.Code)
			if tt.code != http.StatusOK {
				return
			}
			require.Equal(t, tt.contentType, rec.Header().Get("Content-Type"))
			require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
			require.Equal(t, "no-cache", rec.Header().Get("Cache-Control"))
			require.Contains(t, rec.Body.String(), tt.body)
			require.NotContains(t, rec.Body.String(), "placeholder")
		})
	}

	t.Run("etag", func(t *testing.T) {
		etag := serveUI(t, h, http.MethodGet, "/app.js", nil).Header().Get("ETag")
		require.NotEmpty(t, etag)
		rec := serveUI(t, h, http.MethodGet, "/app.js", map[string]string{"If-None-Match": etag})
		require.Equal(t, http.StatusNotModified, rec.Code)
		require.Empty(t, rec.Body.String())
	})
	t.Run("head", func(t *testing.T) {
		rec := serveUI(t, h, http.MethodHead, "/app.css", nil)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "text/css; charset=utf-8", rec.Header().Get("Content-Type"))
		require.Empty(t, rec.Body.String())
	})
	t.Run("post", func(t *testing.T) {
		rec := serveUI(t, h, http.MethodPost, "/", nil)
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
		require.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	})
}
