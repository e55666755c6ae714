package ingest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// bytesCodec sends a *[]byte as the message as is, so a test can send
// bytes that are not a valid request.
type bytesCodec struct{}

func (bytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (bytesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (bytesCodec) Name() string { return "proto" }

// startGRPC starts a receiver with only OTLP/gRPC on a loopback port and
// returns it with a client connection.
func startGRPC(t *testing.T, c Consumer) (*Receiver, *grpc.ClientConn) {
	t.Helper()
	r := newReceiver(t, Config{GRPCAddress: "127.0.0.1:0", MaxRequestBytes: testLimit}, c)
	require.NoError(t, r.Start())
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	require.Nil(t, r.HTTPAddr())
	conn, err := grpc.NewClient(r.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return r, conn
}

// TestGRPCAccepts: an export, plain or gzip, is answered with an empty
// response (no partial success) and every span is counted.
func TestGRPCAccepts(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []grpc.CallOption
	}{
		{"plain", nil},
		{"gzip", []grpc.CallOption{grpc.UseCompressor(gzip.Name)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &spanConsumer{}
			r, conn := startGRPC(t, c)
			// Close to the limit, still below it.
			req := ptraceotlp.NewExportRequestFromTraces(testTraces(7, strings.Repeat("x", testLimit/8)))
			size, err := req.MarshalProto()
			require.NoError(t, err)
			require.Less(t, len(size), testLimit)
			require.Greater(t, len(size), testLimit*3/4)

			resp, err := ptraceotlp.NewGRPCClient(conn).Export(context.Background(), req, tt.opts...)
			require.NoError(t, err)
			require.Zero(t, resp.PartialSuccess().RejectedSpans())
			require.Empty(t, resp.PartialSuccess().ErrorMessage())
			calls, spans := c.got()
			require.Equal(t, 1, calls)
			require.Equal(t, 7, spans)
			require.Equal(t, 1.0, promtestutil.ToFloat64(r.m.requests.WithLabelValues(ProtocolGRPC, "protobuf")))
			require.Equal(t, 7.0, promtestutil.ToFloat64(r.m.spans.WithLabelValues(ProtocolGRPC)))
			requireCounted(t, r, 1, 7, "", "")
		})
	}
}

// TestGRPCRejections: undecodable requests are InvalidArgument, requests
// over MaxRequestBytes (before or after decompression) ResourceExhausted,
// each with a message; nothing is counted but the rejection.
func TestGRPCRejections(t *testing.T) {
	big := ptraceotlp.NewExportRequestFromTraces(testTraces(1, strings.Repeat("x", testLimit)))
	bigBytes, err := big.MarshalProto()
	require.NoError(t, err)
	tests := []struct {
		name          string
		send          func(ctx context.Context, conn *grpc.ClientConn) error
		code          codes.Code
		msg           string
		reason        string
		consumerCalls int
	}{
		{
			name: "bad protobuf",
			send: func(ctx context.Context, conn *grpc.ClientConn) error {
				in, out := []byte{0x0a, 0xff}, []byte(nil)
				return conn.Invoke(ctx, exportMethod, &in, &out, grpc.ForceCodecV2(bytesCodec{}))
			},
			code: codes.InvalidArgument, msg: "unexpected EOF", reason: ReasonDecode, consumerCalls: 1, // pdata's error, passed on
		},
		{
			name: "over the limit",
			send: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, big)
				return err
			},
			code: codes.ResourceExhausted, reason: ReasonTooLarge,
			msg: fmt.Sprintf("grpc: received message larger than max (%d vs. %d)", len(bigBytes), testLimit),
		},
		{
			name: "over the limit after decompression",
			send: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, big, grpc.UseCompressor(gzip.Name))
				return err
			},
			code: codes.ResourceExhausted, reason: ReasonTooLarge,
			msg: fmt.Sprintf("after decompression larger than max %d", testLimit),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &spanConsumer{}
			r, conn := startGRPC(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := tt.send(ctx, conn)
			require.Equal(t, tt.code, status.Code(err), "%v", err)
			require.Contains(t, status.Convert(err).Message(), tt.msg)

			// grpc-go reports the end of the call after the client has
			// its answer.
			require.Eventually(t, func() bool {
				return promtestutil.ToFloat64(r.m.rejected.WithLabelValues(ProtocolGRPC, tt.reason)) == 1
			}, 5*time.Second, 5*time.Millisecond)
			calls, spans := c.got()
			require.Equal(t, tt.consumerCalls, calls)
			require.Zero(t, spans)
			requireCounted(t, r, 0, 0, ProtocolGRPC, tt.reason)
		})
	}
}

// TestGRPCConsumerError: the consumer's error is the InvalidArgument
// message.
func TestGRPCConsumerError(t *testing.T) {
	r, conn := startGRPC(t, &fakeConsumer{err: fmt.Errorf("span 3 has no trace id")})
	_, err := ptraceotlp.NewGRPCClient(conn).Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(testTraces(1, "")))
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Equal(t, "span 3 has no trace id", status.Convert(err).Message())
	require.Eventually(t, func() bool {
		return promtestutil.ToFloat64(r.m.rejected.WithLabelValues(ProtocolGRPC, ReasonDecode)) == 1
	}, 5*time.Second, 5*time.Millisecond)
	requireCounted(t, r, 0, 0, ProtocolGRPC, ReasonDecode)
}
