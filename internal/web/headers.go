package web

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Content-Security-Policy of the UI's pages. The bundle loads its script,
// stylesheets and icon from the same origin, talks only to the API beside
// it, and sets styles through the CSSOM only (which a policy does not
// restrict), so it needs no 'unsafe-inline' and no 'unsafe-eval'.
const uiCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// placeholderCSP is the policy of the page served when the binary holds no
// UI bundle: no script at all, and its own inline stylesheet.
const placeholderCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// securityHeaders are set on every response of the web port.
var securityHeaders = [][2]string{
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
}

// setDefault sets a header unless the response already has it: a header
// from the web configuration file's http_server_config.headers (which
// exporter-toolkit sets before the handler runs) wins.
func setDefault(h http.Header, key, value string) {
	if h.Get(key) == "" {
		h.Set(key, value)
	}
}

// SecurityHeaders sets X-Content-Type-Options: nosniff, X-Frame-Options:
// DENY and Referrer-Policy: no-referrer on every response of next, unless
// the response already carries them.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, kv := range securityHeaders {
			setDefault(h, kv[0], kv[1])
		}
		next.ServeHTTP(w, r)
	})
}

// CompileCORSOrigin compiles the --web.cors.origin regular expression,
// fully anchored as Prometheus does. An empty expression means no CORS and
// returns nil.
func CompileCORSOrigin(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return nil, fmt.Errorf("invalid CORS origin regular expression %q: %w", expr, err)
	}
	return re, nil
}

// matchAnyOrigin is what CompileCORSOrigin makes of ".*".
const matchAnyOrigin = "^(?:.*)$"

// corsHeaders are Prometheus's (util/httputil/cors.go).
var corsHeaders = [][2]string{
	{"Access-Control-Allow-Headers", "Accept, Authorization, Content-Type, Origin"},
	{"Access-Control-Allow-Methods", "GET, POST, OPTIONS"},
	{"Access-Control-Expose-Headers", "Date"},
}

// CORS lets browser scripts of the origins that origin matches call the
// endpoints under prefix, as Prometheus's API does: a request with a
// matching Origin header gets Access-Control-Allow-Origin (and the allowed
// methods and headers), and an OPTIONS preflight is answered 204 here. With
// a nil origin it returns next unchanged: no response carries CORS headers,
// so browsers refuse cross-origin reads.
func CORS(origin *regexp.Regexp, prefix string, next http.Handler) http.Handler {
	if origin == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, prefix) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		if o := r.Header.Get("Origin"); o != "" {
			for _, kv := range corsHeaders {
				h.Set(kv[0], kv[1])
			}
			switch {
			case origin.String() == matchAnyOrigin:
				h.Set("Access-Control-Allow-Origin", "*")
			case origin.MatchString(o):
				h.Set("Access-Control-Allow-Origin", o)
			}
		}
		if r.Method == http.MethodOptions {
			h.Set("Allow", "GET, HEAD, POST, OPTIONS")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
