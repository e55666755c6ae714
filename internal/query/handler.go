package query

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
)

// HandlerAPI returns a Prometheus API client that serves its requests with
// h in-process, so that a caller mounted beside the API (the compare
// endpoint) reads the very API users query — the embedded TSDB or the
// --query.url proxy — without a network round trip.
func HandlerAPI(h http.Handler) v1.API {
	// The address is a constant; NewClient cannot fail on it.
	c, _ := api.NewClient(api.Config{Address: "http://spanwatch.internal", RoundTripper: handlerRT{h}})
	return v1.NewAPI(c)
}

type handlerRT struct{ h http.Handler }

func (t handlerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	t.h.ServeHTTP(rec, r)
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.code, http.StatusText(rec.code)), StatusCode: rec.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(&rec.body), ContentLength: int64(rec.body.Len()), Request: r,
	}, nil
}

// recorder is a minimal buffering http.ResponseWriter.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
