package app_test

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/testutil/spantest"
)

// heapKnob is a heap reading that a test turns up and down.
type heapKnob struct{ v atomic.Uint64 }

func (h *heapKnob) read() (uint64, uint64) { return h.v.Load(), h.v.Load() }

// TestMemoryLimitEndToEnd: with --memory.limit, a heap above the soft limit
// makes the running server refuse OTLP with HTTP 429 and Retry-After,
// and serving resumes by itself when the heap falls; spans refused are not
// counted and spans accepted are.
func TestMemoryLimitEndToEnd(t *testing.T) {
	h := &heapKnob{}
	a := startApp(t, nil, func(o *app.Options) {
		o.Memory.Limit = 1000
		o.Memory.ReadHeap = h.read
		o.Memory.GC = func() {}
		o.Memory.CheckInterval = 5 * time.Millisecond
	})
	require.NotNil(t, a.Memory())
	exps := exporters(t, a)
	send := func(name string) error {
		return exps[name].ExportSpans(context.Background(), spantest.Spans(spantest.Stub{Service: "checkout", Name: "GET /cart"}))
	}
	require.NoError(t, send("http"))
	h.v.Store(850)
	require.Eventually(t, func() bool { return send("http") != nil }, 5*time.Second, 10*time.Millisecond)
	err := send("grpc+gzip")
	require.ErrorContains(t, err, "ResourceExhausted")
	require.ErrorContains(t, err, "soft limit")
	// Queries too: 503 with a message, in the Prometheus envelope.
	resp, err := http.Get("http://" + a.WebAddr().String() + "/api/v1/query?query=1")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), `"errorType":"unavailable"`)
	require.Contains(t, string(body), "soft limit")
	h.v.Store(100)
	require.Eventually(t, func() bool { return send("http") == nil }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, send("grpc+gzip"))
	a.Flush()
	accepted := counterValue(t, a.Registry(), "spanwatch_ingest_spans_accepted_total", map[string]string{"protocol": "http"}) +
		counterValue(t, a.Registry(), "spanwatch_ingest_spans_accepted_total", map[string]string{"protocol": "grpc"})
	// New series are exposed at 0 first: flush once more for the counts.
	a.Flush()
	fams := scrape(t, a)
	calls := sumCounter(fams["traces_span_metrics_calls_total"], map[string]string{"service_name": "checkout"})
	require.InDelta(t, accepted, calls, 0, "every acknowledged span is counted, no refused one")
	require.Positive(t, counterValue(t, a.Registry(), "spanwatch_ingest_rejected_requests_total", map[string]string{"protocol": "http", "reason": "memory_limit"}))
	require.Positive(t, counterValue(t, a.Registry(), "spanwatch_ingest_rejected_requests_total", map[string]string{"protocol": "grpc", "reason": "memory_limit"}))
}
