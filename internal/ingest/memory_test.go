package ingest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// gate is an Admitter that refuses while closed; it opens by itself after
// refusing openAfter requests (0: stays as set).
type gate struct {
	closed    atomic.Bool
	refused   atomic.Int64
	openAfter int64
}

func (g *gate) Admit(string) error {
	if !g.closed.Load() {
		return nil
	}
	if n := g.refused.Add(1); g.openAfter > 0 && n >= g.openAfter {
		g.closed.Store(false)
	}
	return errors.New("memory limit reached: heap 900MiB is above the soft limit 800MiB; retry later")
}

func (*gate) RetryAfter() time.Duration { return time.Second }

// TestMemoryLimitRefusesBeforeReading: above the soft limit both receivers
// answer with a retryable error (gRPC RESOURCE_EXHAUSTED with RetryInfo,
// HTTP 429 with Retry-After and a Status body), the consumer never sees the
// request, the refusal is counted, and requests are accepted again as soon
// as the limiter admits.
func TestMemoryLimitRefusesBeforeReading(t *testing.T) {
	g := &gate{}
	g.closed.Store(true)
	c := &spanConsumer{}
	r := newReceiver(t, Config{GRPCAddress: "127.0.0.1:0", HTTPAddress: "127.0.0.1:0", MaxRequestBytes: 1 << 20, Memory: g}, c)
	require.NoError(t, r.Start())
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()

	body := protoRequest(t, testTraces(3, ""))
	url := "http://" + r.HTTPAddr().String() + "/v1/traces"
	resp, err := http.Post(url, contentTypeProto, bytes.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	require.Contains(t, buf.String(), "soft limit", "the Status body says why")

	conn, err := grpc.NewClient(r.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	er := ptraceotlp.NewExportRequestFromTraces(testTraces(3, ""))
	_, err = ptraceotlp.NewGRPCClient(conn).Export(context.Background(), er)
	st := status.Convert(err)
	require.Equal(t, codes.ResourceExhausted, st.Code(), "%v", err)
	require.Contains(t, st.Message(), "soft limit")
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri
		}
	}
	require.NotNil(t, retry, "RESOURCE_EXHAUSTED is retryable for OTLP exporters only with RetryInfo")
	require.Equal(t, time.Second, retry.GetRetryDelay().AsDuration())

	calls, spans := c.got()
	require.Zero(t, calls, "nothing was read or counted")
	require.Zero(t, spans)
	require.InDelta(t, 1, promtestutil.ToFloat64(r.m.rejected.WithLabelValues(ProtocolHTTP, ReasonMemoryLimit)), 0)
	require.InDelta(t, 1, promtestutil.ToFloat64(r.m.rejected.WithLabelValues(ProtocolGRPC, ReasonMemoryLimit)), 0)
	require.Zero(t, sum(t, r.m.spans))

	g.closed.Store(false)
	resp, err = http.Post(url, contentTypeProto, bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = ptraceotlp.NewGRPCClient(conn).Export(context.Background(), er)
	require.NoError(t, err)
	_, spans = c.got()
	require.Equal(t, 6, spans)
}

// TestMemoryLimitSDKExportersRetry: the OpenTelemetry SDK's exporters, with
// their retry on, treat the refusal as retryable and deliver every span
// once the limiter admits again: nothing acknowledged is lost, nothing
// refused is counted.
func TestMemoryLimitSDKExportersRetry(t *testing.T) {
	for _, protocol := range []string{ProtocolGRPC, ProtocolHTTP} {
		t.Run(protocol, func(t *testing.T) {
			g := &gate{openAfter: 2}
			g.closed.Store(true)
			c := &spanConsumer{}
			r := newReceiver(t, Config{GRPCAddress: "127.0.0.1:0", HTTPAddress: "127.0.0.1:0", MaxRequestBytes: 1 << 20, Memory: g}, c)
			require.NoError(t, r.Start())
			defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
			ctx := context.Background()
			var e spanExporter
			var err error
			if protocol == ProtocolGRPC {
				e, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(r.GRPCAddr().String()), otlptracegrpc.WithInsecure(),
					otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 10 * time.Millisecond,
						MaxInterval: 50 * time.Millisecond, MaxElapsedTime: 20 * time.Second}))
			} else {
				e, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(r.HTTPAddr().String()), otlptracehttp.WithInsecure(),
					otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: true, InitialInterval: 10 * time.Millisecond,
						MaxInterval: 50 * time.Millisecond, MaxElapsedTime: 20 * time.Second}))
			}
			require.NoError(t, err)
			defer func() { _ = e.Shutdown(ctx) }()
			require.NoError(t, e.ExportSpans(ctx, tracetest.SpanStubs{{Name: "a"}, {Name: "b"}}.Snapshots()))
			require.EqualValues(t, 2, g.refused.Load(), "refused twice, then admitted")
			calls, spans := c.got()
			require.Equal(t, 1, calls)
			require.Equal(t, 2, spans)
			require.InDelta(t, 2, promtestutil.ToFloat64(r.m.rejected.WithLabelValues(protocol, ReasonMemoryLimit)), 0)
		})
	}
}
