package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
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
	for _, target := range []string{"/", "/service/checkout?range=1h", "/compare", "/service/api.v2", "/deployments", "/deployments/checkout-1.4.0"} {
		t.Run(target, func(t *testing.T) {
			rec := serveUI(t, h, http.MethodGet, target, nil)
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
			require.Contains(t, rec.Body.String(), "make ui")
		})
	}
	require.Equal(t, http.StatusNotFound, serveUI(t, h, http.MethodGet, "/app.js", nil).Code)
}

// TestUIHandlerEmbedded checks the bundle this build embeds: "/" is the
// index.html that `make ui` writes (not the placeholder), and every script
// and stylesheet it references is served with its content type. Without a
// built bundle the test skips, or fails when CI is set (.ci/run builds the
// bundle before the Go tests).
func TestUIHandlerEmbedded(t *testing.T) {
	if _, err := fs.Stat(assets, "assets/dist/index.html"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no UI bundle embedded (%v): CI is set, so this is a failure; build it with `make ui`", err)
		}
		t.Skipf("no UI bundle embedded (%v): run `make ui` to test it; set CI to make this a failure", err)
	}
	placeholder, err := fs.ReadFile(assets, "assets/placeholder.html")
	require.NoError(t, err)
	h := UIHandler()
	rec := serveUI(t, h, http.MethodGet, "/", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	index := rec.Body.String()
	require.NotEqual(t, string(placeholder), index)
	require.NotContains(t, index, "built without the web UI")
	require.Equal(t, index, serveUI(t, h, http.MethodGet, "/service/checkout", nil).Body.String(), "app routes get the app")

	refs := uiAssetRefs(index)
	require.Contains(t, refs, "/app.js", "index.html loads the bundle's script")
	require.Contains(t, refs, "/app.css", "index.html loads the bundle's stylesheet")
	types := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
		".svg": "image/svg+xml",
		".png": "image/png",
		".ico": "image/x-icon",
	}
	for _, ref := range refs {
		t.Run(ref, func(t *testing.T) {
			rec := serveUI(t, h, http.MethodGet, ref, nil)
			require.Equal(t, http.StatusOK, rec.Code)
			want, ok := types[path.Ext(ref)]
			require.True(t, ok, "no expected content type for %s", ref)
			require.Equal(t, want, rec.Header().Get("Content-Type"))
			require.NotEmpty(t, rec.Body.Bytes())
			require.NotContains(t, rec.Body.String(), "<!doctype html>", "an asset, not the app's page")
		})
	}
}

// uiAssetRefs returns the local paths of the scripts and stylesheets (and
// other <link>ed files) an HTML page loads.
func uiAssetRefs(html string) []string {
	var refs []string
	for _, m := range uiAssetRef.FindAllStringSubmatch(html, -1) {
		refs = append(refs, m[1])
	}
	return refs
}

var uiAssetRef = regexp.MustCompile(`<(?:script|link)\b[^>]*?\b(?:src|href)="(/[^"]+)"`)

// TestUIAssetRefs: the reference finder sees the files a page loads, and
// not its links.
func TestUIAssetRefs(t *testing.T) {
	html := `<!doctype html><html><head>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/app.css">
<script type="module" src="/app.js"></script>
<script src="https://cdn.example/x.js"></script>
</head><body><a href="/compare" data-nav>Compare</a><img src="/logo.png"></body></html>`
	require.Equal(t, []string{"/favicon.svg", "/app.css", "/app.js"}, uiAssetRefs(html))
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
		{"/service/api.v2", 200, "text/html; charset=utf-8", "app.js"}, // a dot in a service name is no asset
		{"/deployments/checkout@1.4.0", 200, "text/html; charset=utf-8", "app.js"},
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
