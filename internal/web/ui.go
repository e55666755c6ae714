package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// assets holds the UI: placeholder.html always, and dist/ (index.html,
// app.js, app.css, …) when the bundle was built with `make ui` before
// `go build`. dist/ is not committed, so a plain `go build` embeds the
// placeholder only.
//
//go:embed assets
var assets embed.FS

// UIHandler serves the web UI at "/": the built single-page app from the
// embedded bundle, or, without one, a placeholder page that says how to
// build it. Mount it at "/" on the web mux; the API's longer patterns win.
// Every response carries the browser safety headers (X-Content-Type-Options,
// X-Frame-Options, Referrer-Policy) and the pages a Content-Security-Policy,
// each unless the response already has it.
func UIHandler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil { // cannot happen: the directory is embedded
		panic(err)
	}
	return newUIHandler(sub)
}

// uiFile is one file of the bundle, read once.
type uiFile struct {
	body        []byte
	contentType string
	etag        string
}

type uiHandler struct {
	files       map[string]*uiFile // path in dist/ without leading slash → file
	index       *uiFile            // dist/index.html, or the placeholder
	placeholder bool               // index is the placeholder page
}

// newUIHandler serves dist/ from fsys, falling back to placeholder.html
// when dist/index.html is missing.
func newUIHandler(fsys fs.FS) http.Handler {
	h := &uiHandler{files: map[string]*uiFile{}}
	if dist, err := fs.Sub(fsys, "dist"); err == nil {
		_ = fs.WalkDir(dist, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil // an unreadable entry is skipped; a missing dist/ means no bundle
			}
			if f := readUIFile(dist, p); f != nil {
				h.files[p] = f
			}
			return nil
		})
	}
	h.index = h.files["index.html"]
	if h.index == nil {
		h.files = map[string]*uiFile{}
		h.index = readUIFile(fsys, "placeholder.html")
		h.placeholder = true
	}
	if h.index == nil {
		h.index = &uiFile{body: []byte("spanwatch: UI assets missing\n"), contentType: "text/plain; charset=utf-8"}
	}
	return h
}

func readUIFile(fsys fs.FS, name string) *uiFile {
	body, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(body)
	return &uiFile{body: body, contentType: uiContentType(name), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// uiContentType does not depend on the host's mime.types (which can map
// .js to text/plain on some systems).
func uiContentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json", ".map":
		return "application/json"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".woff2":
		return "font/woff2"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func (h *uiHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	f, ok := h.files[p]
	switch {
	case ok:
	case p == "api" || strings.HasPrefix(p, "api/") || (path.Ext(p) != "" && !appRoute(p)):
		// A missing asset or API path is a 404, not the app: a broken
		// <script> must not receive HTML.
		http.NotFound(w, r)
		return
	default:
		// "/", "/service/checkout", "/compare", "/deployments/…": the app routes these.
		f = h.index
	}
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	// File names are not content-hashed: let browsers keep copies but
	// revalidate every time (a 304 when unchanged).
	hd.Set("Cache-Control", "no-cache")
	for _, kv := range securityHeaders {
		setDefault(hd, kv[0], kv[1])
	}
	if f == h.index {
		csp := uiCSP
		if h.placeholder {
			csp = placeholderCSP
		}
		setDefault(hd, "Content-Security-Policy", csp)
	}
	if f.etag != "" {
		hd.Set("ETag", f.etag)
		if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, f.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(f.body)
}

func etagMatches(header, etag string) bool {
	for _, m := range strings.Split(header, ",") {
		m = strings.TrimSpace(m)
		if m == "*" || strings.TrimPrefix(m, "W/") == etag {
			return true
		}
	}
	return false
}

// appRoute reports whether p (without its leading slash) is a page of the
// app whose last segment is a name the user chose: a service "api.v2" or a
// deployment of version "1.4.0" has a dot but is no asset.
func appRoute(p string) bool {
	return strings.HasPrefix(p, "service/") || strings.HasPrefix(p, "deployments/")
}
