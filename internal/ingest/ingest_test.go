package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeConsumer struct {
	got   [][]byte
	err   error
	panic bool
}

func (f *fakeConsumer) ConsumeProto(b []byte) (int, error) {
	if f.panic {
		panic("reader bug")
	}
	if f.err != nil {
		return 0, f.err
	}
	f.got = append(f.got, append([]byte(nil), b...))
	return 1, nil
}

func (f *fakeConsumer) ConsumeJSON([]byte) (int, error) { return 0, f.err }

func TestShutdownWithoutStartAndTwice(t *testing.T) {
	r, err := New(DefaultConfig(), &fakeConsumer{}, nil, nil)
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Shutdown(context.Background()))
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		c       Consumer
		wantErr string
	}{
		{"request limit below 1024", Config{MaxRequestBytes: 10}, &fakeConsumer{}, "max request bytes must be at least 1024, got 10"},
		{"request limit zero", Config{}, &fakeConsumer{}, "max request bytes must be at least 1024, got 0"},
		{"nil consumer", DefaultConfig(), nil, "ingest: nil consumer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.cfg, tc.c, nil, nil)
			require.EqualError(t, err, tc.wantErr)
			require.Nil(t, r)
		})
	}
	cfg := Config{MaxRequestBytes: 1024}
	require.NoError(t, cfg.Validate(), "1024 is the smallest limit")
}

func TestHTTPPassesBytesAndMapsConsumerErrors(t *testing.T) {
	fc := &fakeConsumer{}
	r, err := New(Config{HTTPAddress: "127.0.0.1:0", MaxRequestBytes: 1 << 20}, fc, nil, nil)
	require.NoError(t, err)
	require.NoError(t, r.Start())
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
	url := "http://" + r.HTTPAddr().String() + "/v1/traces"
	resp, err := http.Post(url, "application/x-protobuf; charset=utf-8", bytes.NewReader([]byte{1, 2, 3}))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, [][]byte{{1, 2, 3}}, fc.got)
	fc.err = errors.New("boom")
	resp, err = http.Post(url, "application/x-protobuf", bytes.NewReader([]byte{1}))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "application/x-protobuf", resp.Header.Get("Content-Type"))
}

// TestPanicIsAnInternalErrorAndServingGoesOn: a request that makes the
// consumer panic is answered (HTTP 500, gRPC Internal), counted with reason
// internal, and the receiver keeps serving.
func TestPanicIsAnInternalErrorAndServingGoesOn(t *testing.T) {
	fc := &fakeConsumer{panic: true}
	reg := prometheus.NewRegistry()
	r, err := New(Config{HTTPAddress: "127.0.0.1:0", GRPCAddress: "127.0.0.1:0", MaxRequestBytes: 1 << 20}, fc,
		slog.New(slog.DiscardHandler), reg)
	require.NoError(t, err)
	require.NoError(t, r.Start())
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
	url := "http://" + r.HTTPAddr().String() + "/v1/traces"
	resp, err := http.Post(url, "application/x-protobuf", bytes.NewReader([]byte{1}))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)

	conn, err := grpc.NewClient(r.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	_, err = ptraceotlp.NewGRPCClient(conn).Export(context.Background(), ptraceotlp.NewExportRequest())
	require.Equal(t, codes.Internal, status.Code(err), "%v", err)
	require.Equal(t, 1.0, promtestutil.ToFloat64(r.m.rejected.WithLabelValues(ProtocolHTTP, ReasonInternal)))
	require.Eventually(t, func() bool {
		return promtestutil.ToFloat64(r.m.rejected.WithLabelValues(ProtocolGRPC, ReasonInternal)) == 1
	}, 5*time.Second, 10*time.Millisecond)

	fc.panic = false
	resp, err = http.Post(url, "application/x-protobuf", bytes.NewReader([]byte{1}))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// spanConsumer decodes requests as pdata does and counts their spans; a
// request that does not decode counts nothing. It is safe for concurrent
// use.
type spanConsumer struct {
	mu    sync.Mutex
	calls int
	spans int
}

func (c *spanConsumer) ConsumeProto(b []byte) (int, error) {
	er := ptraceotlp.NewExportRequest()
	err := er.UnmarshalProto(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if err != nil {
		return 0, err
	}
	n := er.Traces().SpanCount()
	c.spans += n
	return n, nil
}

func (c *spanConsumer) ConsumeJSON(b []byte) (int, error) {
	er := ptraceotlp.NewExportRequest()
	err := er.UnmarshalJSON(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if err != nil {
		return 0, err
	}
	n := er.Traces().SpanCount()
	c.spans += n
	return n, nil
}

// got returns how many requests reached the consumer and the spans it
// counted.
func (c *spanConsumer) got() (calls, spans int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, c.spans
}

// testTraces returns n spans of one service; attr, if not empty, is set on
// each span (to make a request of a given size).
func testTraces(n int, attr string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetName(fmt.Sprintf("op-%d", i))
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetTraceID(pcommon.TraceID{1, byte(i)})
		sp.SetSpanID(pcommon.SpanID{2, byte(i)})
		sp.SetStartTimestamp(1_000_000_000)
		sp.SetEndTimestamp(1_005_000_000)
		if attr != "" {
			sp.Attributes().PutStr("payload", attr)
		}
	}
	return td
}

func protoRequest(t *testing.T, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	return b
}

func jsonRequest(t *testing.T, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	require.NoError(t, err)
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// newReceiver returns a receiver that is not started, with its own
// registry.
func newReceiver(t *testing.T, cfg Config, c Consumer) *Receiver {
	t.Helper()
	r, err := New(cfg, c, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	return r
}

// sum adds the values of every series of a counter vector.
func sum(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	var s float64
	for m := range ch {
		var pb dto.Metric
		require.NoError(t, m.Write(&pb))
		s += pb.GetCounter().GetValue()
	}
	return s
}

// requireCounted checks the receiver's self-metrics: accepted requests and
// spans, and rejected requests by protocol and reason ("" for none).
func requireCounted(t *testing.T, r *Receiver, requests, spans float64, protocol, reason string) {
	t.Helper()
	require.Equal(t, requests, sum(t, r.m.requests), "accepted requests")
	require.Equal(t, spans, sum(t, r.m.spans), "accepted spans")
	if reason == "" {
		require.Zero(t, sum(t, r.m.rejected), "rejected requests")
		return
	}
	require.Equal(t, 1.0, sum(t, r.m.rejected), "rejected requests")
	require.Equal(t, 1.0, promtestutil.ToFloat64(r.m.rejected.WithLabelValues(protocol, reason)), "rejected with reason %s", reason)
}
