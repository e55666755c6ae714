package ingest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
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

func (f *fakeConsumer) ConsumeTraces(ptrace.Traces) (int, error) { return 0, f.err }

func TestShutdownWithoutStartAndTwice(t *testing.T) {
	r, err := New(DefaultConfig(), &fakeConsumer{}, nil, nil)
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Shutdown(context.Background()))
}

func TestConfigValidation(t *testing.T) {
	_, err := New(Config{MaxRequestBytes: 10}, &fakeConsumer{}, nil, nil)
	require.Error(t, err)
	_, err = New(DefaultConfig(), nil, nil, nil)
	require.Error(t, err)
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
