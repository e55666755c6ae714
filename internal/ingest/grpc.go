package ingest

import (
	"context"
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP exporters may gzip requests.
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// The OTLP TraceService, served without generated stubs: the request bytes
// go to the Consumer undecoded, so the protobuf reader sees them first.
const (
	traceServiceName = "opentelemetry.proto.collector.trace.v1.TraceService"
	exportMethod     = "/" + traceServiceName + "/Export"
)

// rawRequest receives a request's bytes from rawCodec.
type rawRequest struct {
	buf mem.Buffer
}

// rawResponse is an empty ExportTraceServiceResponse: zero bytes on the wire.
type rawResponse struct{}

// rawCodec passes requests through as bytes and answers with an empty
// response; any other message goes to the registered proto codec.
type rawCodec struct {
	fallback encoding.CodecV2
}

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if _, ok := v.(*rawResponse); ok {
		return mem.BufferSlice{}, nil
	}
	return c.fallback.Marshal(v)
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawRequest); ok {
		r.buf = data.MaterializeToBuffer(mem.DefaultBufferPool())
		return nil
	}
	return c.fallback.Unmarshal(data, v)
}

func (rawCodec) Name() string { return "proto" }

type grpcServer struct {
	srv *grpc.Server
	r   *Receiver
}

type traceService interface{}

func newGRPCServer(r *Receiver) *grpcServer {
	g := &grpcServer{r: r}
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(rawCodec{fallback: encoding.GetCodecV2("proto")}),
		grpc.MaxRecvMsgSize(r.cfg.MaxRequestBytes),
		grpc.StatsHandler(&rejectCounter{r: r}),
	}
	if r.grpcTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(r.grpcTLS.serverConfig())))
	}
	if r.grpcAuth != nil || r.cfg.Memory != nil {
		opts = append(opts, grpc.InTapHandle(g.tap))
	}
	g.srv = grpc.NewServer(opts...)
	g.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: traceServiceName,
		HandlerType: (*traceService)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Export",
			Handler:    g.export,
		}},
		Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
	}, g)
	return g
}

func (g *grpcServer) export(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	req := &rawRequest{}
	if err := dec(req); err != nil {
		return nil, err
	}
	defer req.buf.Free()
	n, err := g.r.consume(func() (int, error) { return g.r.consumer.ConsumeProto(req.buf.ReadOnlyData()) })
	if errors.Is(err, errInternal) {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	g.r.m.requests.WithLabelValues(ProtocolGRPC, "protobuf").Inc()
	g.r.m.spans.WithLabelValues(ProtocolGRPC).Add(float64(n))
	return &rawResponse{}, nil
}

// tap runs before a call's stream is created, so that the request of a
// client without credentials, or one arriving above the memory limit, is
// never read. grpc-go reports such a call to no stats handler: it is
// counted here.
func (g *grpcServer) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if g.r.grpcAuth != nil {
		if ctx, err := g.authenticate(ctx, info); err != nil {
			return ctx, err
		}
	}
	if m := g.r.cfg.Memory; m != nil {
		if err := m.Admit("otlp"); err != nil {
			g.r.m.rejected.WithLabelValues(ProtocolGRPC, ReasonMemoryLimit).Inc()
			g.r.logger.Debug("rejected OTLP/gRPC request", "reason", ReasonMemoryLimit, "err", err)
			// RESOURCE_EXHAUSTED is retryable for OTLP exporters only with
			// RetryInfo.
			st, derr := status.New(codes.ResourceExhausted, err.Error()).
				WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(max(time.Second, m.RetryAfter()))})
			if derr != nil {
				return ctx, status.Error(codes.Unavailable, err.Error())
			}
			return ctx, st.Err()
		}
	}
	return ctx, nil
}

func (g *grpcServer) authenticate(ctx context.Context, info *tap.Info) (context.Context, error) {
	var header string
	if v := info.Header.Get("authorization"); len(v) > 0 {
		header = v[0]
	}
	if g.r.grpcAuth.check(header) {
		return ctx, nil
	}
	g.r.m.rejected.WithLabelValues(ProtocolGRPC, ReasonUnauthenticated).Inc()
	g.r.logger.Debug("rejected OTLP/gRPC request", "reason", ReasonUnauthenticated, "method", info.FullMethodName)
	return ctx, status.Error(codes.Unauthenticated, errUnauthenticated.Error())
}

// rejectCounter counts failed gRPC calls, including those grpc-go rejects
// before the handler runs (messages over the size limit).
type rejectCounter struct{ r *Receiver }

func (*rejectCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (*rejectCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (*rejectCounter) HandleConn(context.Context, stats.ConnStats) {}

func (c *rejectCounter) HandleRPC(_ context.Context, s stats.RPCStats) {
	end, ok := s.(*stats.End)
	if !ok || end.Error == nil {
		return
	}
	reason := ReasonOther
	switch status.Code(end.Error) {
	case codes.InvalidArgument:
		reason = ReasonDecode
	case codes.ResourceExhausted:
		reason = ReasonTooLarge
	case codes.Canceled, codes.DeadlineExceeded:
		reason = ReasonRead
	case codes.Internal:
		reason = ReasonInternal
	case codes.Unauthenticated:
		reason = ReasonUnauthenticated
	}
	c.r.m.rejected.WithLabelValues(ProtocolGRPC, reason).Inc()
	if reason != ReasonRead {
		c.r.logger.Debug("rejected OTLP/gRPC request", "reason", reason, "err", end.Error)
	}
}
