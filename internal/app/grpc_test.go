package app_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/spanwatch/spanwatch/internal/app"
)

// bytesCodec sends []byte as the message, so tests can send any bytes.
type bytesCodec struct{}

func (bytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*(v.(*[]byte)))}, nil
}
func (bytesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}
func (bytesCodec) Name() string { return "proto" }

func testMalformedGRPC(t *testing.T, a *app.App) {
	conn, err := grpc.NewClient(a.OTLPGRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(bytesCodec{})))
	require.NoError(t, err)
	defer conn.Close()
	invoke := func(req []byte, opts ...grpc.CallOption) error {
		var resp []byte
		return conn.Invoke(context.Background(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &req, &resp, opts...)
	}
	cases := []struct {
		name   string
		req    []byte
		opts   []grpc.CallOption
		code   codes.Code
		reason string
	}{
		{"garbage", []byte{0x0a, 0x05, 0x01}, nil, codes.InvalidArgument, "decode"},
		{"bad trace id", []byte{0x0a, 0x08, 0x12, 0x06, 0x12, 0x04, 0x0a, 0x02, 0x01, 0x02}, nil, codes.InvalidArgument, "decode"},
		{"too large", make([]byte, 65<<10), nil, codes.ResourceExhausted, "too_large"},
		{"gzip bomb", make([]byte, 1<<20), []grpc.CallOption{grpc.UseCompressor(gzip.Name)}, codes.ResourceExhausted, "too_large"},
		{"empty request", []byte{}, nil, codes.OK, ""},
	}
	for _, tc := range cases {
		t.Run("grpc "+tc.name, func(t *testing.T) {
			before := counterValue(t, a.Registry(), "spanwatch_ingest_rejected_requests_total", map[string]string{"protocol": "grpc", "reason": tc.reason})
			err := invoke(tc.req, tc.opts...)
			require.Equal(t, tc.code, status.Code(err), "err: %v", err)
			if tc.code == codes.OK {
				return
			}
			require.NotEmpty(t, status.Convert(err).Message())
			after := counterValue(t, a.Registry(), "spanwatch_ingest_rejected_requests_total", map[string]string{"protocol": "grpc", "reason": tc.reason})
			require.Equal(t, before+1, after)
		})
	}
}
