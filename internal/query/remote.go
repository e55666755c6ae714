package query

import (
	"context"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// Func evaluates an instant query: the shape of Prometheus's
// rules.QueryFunc, so the rules manager can run on a local engine or a
// remote store alike.
type Func func(ctx context.Context, q string, t time.Time) (promql.Vector, error)

// Remote is a Prometheus-compatible HTTP API that spanwatch reads from:
// Prometheus, Mimir, Thanos or another spanwatch.
type Remote struct {
	// URL is the API's base address (without /api/v1), e.g.
	// http://mimir:8080/prometheus. User information in it
	// (http://user:password@host) is sent as basic authentication.
	URL string
	// Headers are set on every request, e.g. X-Scope-OrgID for a Mimir
	// tenant or Authorization for a bearer token.
	Headers map[string]string
}

// ParseHeaders reads "Name: value" strings as curl's -H does. Names are
// canonicalised; a name given twice is an error, as is a header that HTTP
// client code sets itself (Host, Content-Length, ...).
func ParseHeaders(hs []string) (map[string]string, error) {
	out := make(map[string]string, len(hs))
	for _, h := range hs {
		name, value, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("header %q: want \"Name: value\"", h)
		}
		name = textproto.CanonicalMIMEHeaderKey(name)
		if err := CheckHeader(name); err != nil {
			return nil, fmt.Errorf("header %q: %w", h, err)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("header %q: %s is given twice", h, name)
		}
		out[name] = strings.TrimSpace(value)
	}
	return out, nil
}

// CheckHeader reports whether name may be configured as a header of
// requests to a remote query API.
func CheckHeader(name string) error {
	if name == "" || strings.ContainsAny(name, " \t:") {
		return fmt.Errorf("%q is not a header name", name)
	}
	if c := textproto.CanonicalMIMEHeaderKey(name); slices.Contains(reservedHeaders, c) {
		return fmt.Errorf("%s is set by spanwatch itself", c)
	}
	return nil
}

// reservedHeaders are managed by the HTTP client or the query API's
// encoding; setting them by hand breaks requests.
var reservedHeaders = []string{"Host", "Content-Length", "Content-Type", "Content-Encoding",
	"Accept-Encoding", "Connection", "Transfer-Encoding", "Upgrade", "User-Agent"}

// RoundTripper returns next with r's headers set on every request; a
// header of the same name already on the request is replaced, so a
// proxied client cannot choose, say, another tenant.
func (r Remote) RoundTripper(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if len(r.Headers) == 0 {
		return next
	}
	h := &config.Headers{Headers: make(map[string]config.Header, len(r.Headers))}
	for k, v := range r.Headers {
		h.Headers[textproto.CanonicalMIMEHeaderKey(k)] = config.Header{Values: []string{v}}
	}
	return &replaceHeaders{names: h.Headers, next: config.NewHeadersRoundTripper(h, next)}
}

// replaceHeaders drops the configured names from a request before the
// headers round tripper adds their configured values.
type replaceHeaders struct {
	names map[string]config.Header
	next  http.RoundTripper
}

func (rh *replaceHeaders) RoundTrip(req *http.Request) (*http.Response, error) {
	clash := false
	for k := range rh.names {
		if _, ok := req.Header[k]; ok {
			clash = true
			break
		}
	}
	if clash {
		req = req.Clone(req.Context())
		for k := range rh.names {
			req.Header.Del(k)
		}
	}
	return rh.next.RoundTrip(req)
}

// Client returns an API client for r whose requests travel over next
// (nil: http.DefaultTransport) with r's headers.
func (r Remote) Client(next http.RoundTripper) (api.Client, error) {
	c, err := api.NewClient(api.Config{Address: r.URL, RoundTripper: r.RoundTripper(next)})
	if err != nil {
		return nil, fmt.Errorf("query URL %q: %w", r.URL, err)
	}
	return c, nil
}

// RemoteFunc evaluates instant queries on a Prometheus-compatible HTTP API.
// Float samples and scalars are returned; native-histogram samples are
// skipped (rules over span metrics compare floats).
func RemoteFunc(r Remote) (Func, error) {
	c, err := r.Client(nil)
	if err != nil {
		return nil, err
	}
	a := v1.NewAPI(c)
	return func(ctx context.Context, q string, t time.Time) (promql.Vector, error) {
		val, _, _, err := a.Query(ctx, q, t)
		if err != nil {
			return nil, err
		}
		switch v := val.(type) {
		case model.Vector:
			out := make(promql.Vector, 0, len(v))
			for _, s := range v {
				if s.Histogram != nil {
					continue
				}
				b := labels.NewScratchBuilder(len(s.Metric))
				for k, lv := range s.Metric {
					b.Add(string(k), string(lv))
				}
				b.Sort()
				out = append(out, promql.Sample{Metric: b.Labels(), T: int64(s.Timestamp), F: float64(s.Value)})
			}
			return out, nil
		case *model.Scalar:
			return promql.Vector{{T: int64(v.Timestamp), F: float64(v.Value), Metric: labels.EmptyLabels()}}, nil
		}
		return nil, fmt.Errorf("rule query %q returned %s, want a vector or scalar", q, val.Type())
	}, nil
}
