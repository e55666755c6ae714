package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

const testLimit = 64 << 10

// postOTLP sends one request to the receiver's HTTP handler; an empty
// content type or encoding leaves that header unset.
func postOTLP(h http.Handler, method, contentType, contentEncoding string, body io.Reader) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/v1/traces", body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if contentEncoding != "" {
		req.Header.Set("Content-Encoding", contentEncoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// decodeStatus decodes a rejection's google.rpc.Status in the encoding its
// Content-Type names.
func decodeStatus(t *testing.T, rec *httptest.ResponseRecorder) *spb.Status {
	t.Helper()
	st := &spb.Status{}
	switch ct := rec.Header().Get("Content-Type"); ct {
	case contentTypeProto:
		require.NoError(t, proto.Unmarshal(rec.Body.Bytes(), st), "protobuf Status body")
	case contentTypeJSON:
		require.NoError(t, protojson.Unmarshal(rec.Body.Bytes(), st), "JSON Status body: %s", rec.Body)
	default:
		t.Fatalf("rejection with Content-Type %q", ct)
	}
	return st
}

// onlyReader hides the concrete type of a body so that httptest leaves the
// request's ContentLength unknown (as for a chunked request).
type onlyReader struct{ io.Reader }

// failingReader returns its bytes, then err.
type failingReader struct {
	b   []byte
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, f.err
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// TestHTTPRejections: every rejection has its status code, a
// google.rpc.Status body with the matching gRPC code and a message, in
// the request's encoding when it has a supported one; the consumer does
// not count it and only the rejection counter moves.
func TestHTTPRejections(t *testing.T) {
	valid := protoRequest(t, testTraces(3, ""))
	bomb := gzipped(t, make([]byte, 4*testLimit))
	require.Less(t, len(bomb), testLimit/8, "the bomb is small on the wire")
	gz := gzipped(t, valid)
	corrupt := append([]byte(nil), gz...)
	for i := 10; i < len(corrupt)-8; i++ { // header and trailer intact, deflate data not
		corrupt[i] = 0xff
	}
	tests := []struct {
		name            string
		method          string
		contentType     string
		contentEncoding string
		body            io.Reader
		code            int
		grpcCode        codes.Code
		respType        string
		reason          string
		msg             string
		consumerCalls   int
	}{
		{name: "GET", method: http.MethodGet, contentType: contentTypeProto,
			code: http.StatusMethodNotAllowed, grpcCode: codes.Unimplemented, respType: contentTypeJSON, reason: ReasonMethod,
			msg: "method GET not allowed, use POST"},
		{name: "PUT", method: http.MethodPut, contentType: contentTypeJSON, body: bytes.NewReader(valid),
			code: http.StatusMethodNotAllowed, grpcCode: codes.Unimplemented, respType: contentTypeJSON, reason: ReasonMethod,
			msg: "method PUT not allowed, use POST"},
		{name: "no content type", body: bytes.NewReader(valid),
			code: http.StatusUnsupportedMediaType, grpcCode: codes.Unimplemented, respType: contentTypeJSON, reason: ReasonContentType,
			msg: `unsupported content type "": use application/x-protobuf or application/json`},
		{name: "text/plain", contentType: "text/plain; charset=utf-8", body: bytes.NewReader(valid),
			code: http.StatusUnsupportedMediaType, grpcCode: codes.Unimplemented, respType: contentTypeJSON, reason: ReasonContentType,
			msg: `unsupported content type "text/plain; charset=utf-8"`},
		{name: "protobuf subtype", contentType: "application/protobuf", body: bytes.NewReader(valid),
			code: http.StatusUnsupportedMediaType, grpcCode: codes.Unimplemented, respType: contentTypeJSON, reason: ReasonContentType,
			msg: `unsupported content type "application/protobuf"`},
		{name: "brotli", contentType: contentTypeProto, contentEncoding: "br", body: bytes.NewReader(valid),
			code: http.StatusUnsupportedMediaType, grpcCode: codes.Unimplemented, respType: contentTypeProto, reason: ReasonContentEncoding,
			msg: `unsupported content encoding "br": use gzip or none`},
		{name: "bad protobuf", contentType: contentTypeProto, body: bytes.NewReader([]byte{0x0a, 0xff}),
			code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, respType: contentTypeProto, reason: ReasonDecode,
			msg: "cannot decode OTLP trace request: ", consumerCalls: 1},
		{name: "bad JSON", contentType: contentTypeJSON, body: strings.NewReader(`{"resourceSpans": [`),
			code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, respType: contentTypeJSON, reason: ReasonDecode,
			msg: "cannot decode OTLP trace request: ", consumerCalls: 1},
		// pdata's JSON errors quote the input: the Status must still
		// encode (its message is a UTF-8 string).
		{name: "protobuf sent as JSON", contentType: contentTypeJSON, body: bytes.NewReader(valid),
			code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, respType: contentTypeJSON, reason: ReasonDecode,
			msg: "cannot decode OTLP trace request: ", consumerCalls: 1},
		{name: "JSON with invalid UTF-8", contentType: contentTypeJSON, body: strings.NewReader("\xff\xfe{}"),
			code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, respType: contentTypeJSON, reason: ReasonDecode,
			msg: "cannot decode OTLP trace request: ", consumerCalls: 1},
		{name: "Content-Length over the limit", contentType: contentTypeProto, body: bytes.NewReader(make([]byte, testLimit+1)),
			code: http.StatusRequestEntityTooLarge, grpcCode: codes.ResourceExhausted, respType: contentTypeProto, reason: ReasonTooLarge,
			msg: "request body too large: 65537 bytes, the limit is 65536"},
		{name: "chunked body over the limit", contentType: contentTypeJSON, body: onlyReader{bytes.NewReader(make([]byte, testLimit+1))},
			code: http.StatusRequestEntityTooLarge, grpcCode: codes.ResourceExhausted, respType: contentTypeJSON, reason: ReasonTooLarge,
			msg: "request body too large: more than 65536 bytes after decompression"},
		{name: "gzip bomb", contentType: contentTypeProto, contentEncoding: "gzip", body: bytes.NewReader(bomb),
			code: http.StatusRequestEntityTooLarge, grpcCode: codes.ResourceExhausted, respType: contentTypeProto, reason: ReasonTooLarge,
			msg: "request body too large: more than 65536 bytes after decompression"},
		{name: "not gzip", contentType: contentTypeProto, contentEncoding: "gzip", body: bytes.NewReader(valid),
			code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, respType: contentTypeProto, reason: ReasonDecode,
			msg: "invalid gzip body: gzip: invalid header"},
		{name: "empty gzip", contentType: contentTypeJSON, contentEncoding: "gzip", body: bytes.NewReader(nil),
			code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, respType: contentTypeJSON, reason: ReasonDecode,
			msg: "invalid gzip body: EOF"},
		{name: "truncated gzip", contentType: contentTypeProto, contentEncoding: "gzip", body: bytes.NewReader(gz[:len(gz)-4]),
			code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, respType: contentTypeProto, reason: ReasonDecode,
			msg: "invalid gzip body: unexpected EOF"},
		{name: "corrupt deflate data", contentType: contentTypeProto, contentEncoding: "gzip", body: bytes.NewReader(corrupt),
			code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, respType: contentTypeProto, reason: ReasonDecode,
			msg: "invalid gzip body: flate: corrupt input"},
		{name: "body read fails", contentType: contentTypeProto, body: onlyReader{&failingReader{b: valid[:5], err: errors.New("connection reset")}},
			code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, respType: contentTypeProto, reason: ReasonRead,
			msg: "reading request body: connection reset"},
		{name: "body ends early", contentType: contentTypeProto, contentEncoding: "identity", body: onlyReader{&failingReader{b: valid[:5], err: io.ErrUnexpectedEOF}},
			code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, respType: contentTypeProto, reason: ReasonRead,
			msg: "reading request body: unexpected EOF"},
		{name: "gzip body read fails", contentType: contentTypeProto, contentEncoding: "gzip", body: onlyReader{&failingReader{b: gz[:20], err: errors.New("connection reset")}},
			code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, respType: contentTypeProto, reason: ReasonRead,
			msg: "reading request body: connection reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &spanConsumer{}
			r := newReceiver(t, Config{MaxRequestBytes: testLimit}, c)
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			rec := postOTLP(r.httpHandler(), method, tt.contentType, tt.contentEncoding, tt.body)
			require.Equal(t, tt.code, rec.Code, "%s", rec.Body)
			require.Equal(t, tt.respType, rec.Header().Get("Content-Type"))
			require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
			if tt.code == http.StatusMethodNotAllowed {
				require.Equal(t, http.MethodPost, rec.Header().Get("Allow"))
			}
			st := decodeStatus(t, rec)
			require.Equal(t, int32(tt.grpcCode), st.GetCode())
			require.Contains(t, st.GetMessage(), tt.msg)

			calls, spans := c.got()
			require.Equal(t, tt.consumerCalls, calls, "requests that reached the consumer")
			require.Zero(t, spans, "spans counted")
			requireCounted(t, r, 0, 0, ProtocolHTTP, tt.reason)
		})
	}
}

// TestHTTPAccepts: protobuf and JSON, plain or gzip, are acknowledged with
// 200 and an empty ExportTraceServiceResponse (no partial success: a
// request is accepted whole or rejected whole) in the request's encoding,
// and every span is counted.
func TestHTTPAccepts(t *testing.T) {
	td := testTraces(5, "")
	pb, js := protoRequest(t, td), jsonRequest(t, td)
	tests := []struct {
		name            string
		contentType     string
		contentEncoding string
		body            []byte
		respType        string
		encoding        string
	}{
		{"protobuf", contentTypeProto, "", pb, contentTypeProto, "protobuf"},
		{"protobuf with parameters", "application/x-protobuf; charset=utf-8", "", pb, contentTypeProto, "protobuf"},
		{"protobuf identity", contentTypeProto, "identity", pb, contentTypeProto, "protobuf"},
		{"protobuf gzip", contentTypeProto, "gzip", gzipped(t, pb), contentTypeProto, "protobuf"},
		{"protobuf x-gzip", contentTypeProto, "x-gzip", gzipped(t, pb), contentTypeProto, "protobuf"},
		{"JSON", contentTypeJSON, "", js, contentTypeJSON, "json"},
		{"JSON with charset, upper case", "Application/JSON; charset=utf-8", "", js, contentTypeJSON, "json"},
		{"JSON gzip", contentTypeJSON, "gzip", gzipped(t, js), contentTypeJSON, "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &spanConsumer{}
			r := newReceiver(t, Config{MaxRequestBytes: testLimit}, c)
			rec := postOTLP(r.httpHandler(), http.MethodPost, tt.contentType, tt.contentEncoding, bytes.NewReader(tt.body))
			require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
			require.Equal(t, tt.respType, rec.Header().Get("Content-Type"))
			resp := ptraceotlp.NewExportResponse()
			if tt.respType == contentTypeJSON {
				require.JSONEq(t, "{}", rec.Body.String())
				require.NoError(t, resp.UnmarshalJSON(rec.Body.Bytes()))
			} else {
				require.Empty(t, rec.Body.Bytes())
				require.NoError(t, resp.UnmarshalProto(rec.Body.Bytes()))
			}
			require.Zero(t, resp.PartialSuccess().RejectedSpans())
			require.Empty(t, resp.PartialSuccess().ErrorMessage())

			calls, spans := c.got()
			require.Equal(t, 1, calls)
			require.Equal(t, 5, spans)
			requireCounted(t, r, 1, 5, "", "")
			require.Equal(t, 1.0, promtestutil.ToFloat64(r.m.requests.WithLabelValues(ProtocolHTTP, tt.encoding)))
			require.Equal(t, 5.0, promtestutil.ToFloat64(r.m.spans.WithLabelValues(ProtocolHTTP)))
		})
	}
}

// TestHTTPLimitIsAfterDecompression: a body of exactly MaxRequestBytes is
// accepted and one byte more is not, whether it came compressed or not.
func TestHTTPLimitIsAfterDecompression(t *testing.T) {
	for _, enc := range []string{"", "gzip"} {
		for _, size := range []int{testLimit, testLimit + 1} {
			t.Run(fmt.Sprintf("encoding=%q/size=%d", enc, size), func(t *testing.T) {
				fc := &fakeConsumer{}
				r := newReceiver(t, Config{MaxRequestBytes: testLimit}, fc)
				body := make([]byte, size)
				if enc == "gzip" {
					body = gzipped(t, body)
				}
				rec := postOTLP(r.httpHandler(), http.MethodPost, contentTypeProto, enc, bytes.NewReader(body))
				if size <= testLimit {
					require.Equal(t, http.StatusOK, rec.Code)
					require.Len(t, fc.got, 1)
					require.Len(t, fc.got[0], size, "the consumer gets the decompressed bytes")
					return
				}
				require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
				require.Empty(t, fc.got)
				requireCounted(t, r, 0, 0, ProtocolHTTP, ReasonTooLarge)
			})
		}
	}
}

// TestHTTPConsumerError: a consumer's error is a 400 whose message carries
// it, in the request's encoding, even when the error holds bytes that are
// not UTF-8; nothing is counted as accepted.
func TestHTTPConsumerError(t *testing.T) {
	for _, tt := range []struct {
		name, contentType, body string
		err                     error
		msg                     string
	}{
		{"protobuf", contentTypeProto, "\x01", errors.New("span 3 has no trace id"),
			"cannot decode OTLP trace request: span 3 has no trace id"},
		{"JSON", contentTypeJSON, "{}", errors.New("span 3 has no trace id"),
			"cannot decode OTLP trace request: span 3 has no trace id"},
		{"protobuf, invalid UTF-8", contentTypeProto, "\x01", errors.New("bad name \"\xffop\""),
			"cannot decode OTLP trace request: bad name \"\uFFFDop\""},
		{"JSON, invalid UTF-8", contentTypeJSON, "{}", errors.New("bad name \"\xffop\""),
			"cannot decode OTLP trace request: bad name \"\uFFFDop\""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t, Config{MaxRequestBytes: testLimit}, &fakeConsumer{err: tt.err})
			rec := postOTLP(r.httpHandler(), http.MethodPost, tt.contentType, "", strings.NewReader(tt.body))
			require.Equal(t, http.StatusBadRequest, rec.Code)
			require.Equal(t, tt.contentType, rec.Header().Get("Content-Type"))
			st := decodeStatus(t, rec)
			require.Equal(t, int32(codes.InvalidArgument), st.GetCode())
			require.Equal(t, tt.msg, st.GetMessage())
			requireCounted(t, r, 0, 0, ProtocolHTTP, ReasonDecode)
		})
	}
}

// TestHTTPServer goes through a real listener and client: gzip from the
// client, an unknown path, and the Allow header of a 405.
func TestHTTPServer(t *testing.T) {
	c := &spanConsumer{}
	r, err := New(Config{HTTPAddress: "127.0.0.1:0", MaxRequestBytes: testLimit}, c, nil, nil)
	require.NoError(t, err)
	require.NoError(t, r.Start())
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
	require.Nil(t, r.GRPCAddr())
	base := "http://" + r.HTTPAddr().String()

	req, err := http.NewRequest(http.MethodPost, base+"/v1/traces", bytes.NewReader(gzipped(t, jsonRequest(t, testTraces(4, "")))))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentTypeJSON)
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Equal(t, contentTypeJSON, resp.Header.Get("Content-Type"))
	require.JSONEq(t, "{}", string(body))
	_, spans := c.got()
	require.Equal(t, 4, spans)

	resp, err = http.Post(base+"/v1/metrics", contentTypeProto, bytes.NewReader(nil))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	resp, err = http.Get(base + "/v1/traces")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, http.MethodPost, resp.Header.Get("Allow"))

	// A client that announces more bytes than it sends and hangs up.
	conn, err := net.Dial("tcp", r.HTTPAddr().String())
	require.NoError(t, err)
	_, err = io.WriteString(conn, "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\nabc")
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	answer, _ := io.ReadAll(conn)
	conn.Close()
	require.Contains(t, string(answer), "HTTP/1.1 400 ")
	require.Contains(t, string(answer), "reading request body: unexpected EOF")
	calls, spans := c.got()
	require.Equal(t, 1, calls, "the truncated request did not reach the consumer")
	require.Equal(t, 4, spans)
}
