package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const (
	contentTypeProto = "application/x-protobuf"
	contentTypeJSON  = "application/json"
)

var errTooLarge = errors.New("request body too large")

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

var gzipPool sync.Pool

// httpHandler serves POST /v1/traces as the OTLP/HTTP specification asks:
// the response body is an ExportTraceServiceResponse on success and a
// google.rpc.Status on failure, in the request's encoding.
func (r *Receiver) httpHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.httpAuth != nil && !r.httpAuth.check(req.Header.Get("Authorization")) {
			// Before anything else: a client without credentials learns
			// nothing about the endpoint, and its body is never read.
			w.Header().Set("WWW-Authenticate", r.httpAuth.challenge())
			ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
			r.httpReject(w, ct, http.StatusUnauthorized, ReasonUnauthenticated, errUnauthenticated.Error())
			return
		}
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			r.httpReject(w, contentTypeJSON, http.StatusMethodNotAllowed, ReasonMethod,
				fmt.Sprintf("method %s not allowed, use POST", req.Method))
			return
		}
		ct, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
		if err != nil || (ct != contentTypeProto && ct != contentTypeJSON) {
			r.httpReject(w, contentTypeJSON, http.StatusUnsupportedMediaType, ReasonContentType,
				fmt.Sprintf("unsupported content type %q: use %s or %s", req.Header.Get("Content-Type"), contentTypeProto, contentTypeJSON))
			return
		}
		if r.cfg.Memory != nil {
			if err := r.cfg.Memory.Admit("otlp"); err != nil {
				// The body stays unread: nothing is allocated for it.
				w.Header().Set("Retry-After", strconv.Itoa(int(max(time.Second, r.cfg.Memory.RetryAfter()).Seconds())))
				r.httpReject(w, ct, http.StatusTooManyRequests, ReasonMemoryLimit, err.Error())
				return
			}
		}
		buf := bufPool.Get().(*bytes.Buffer)
		defer func() {
			if buf.Cap() <= 4<<20 {
				buf.Reset()
				bufPool.Put(buf)
			}
		}()
		buf.Reset()
		status, reason, err := r.readBody(req, buf)
		if err != nil {
			r.httpReject(w, ct, status, reason, err.Error())
			return
		}
		n, err := r.consume(func() (int, error) {
			if ct == contentTypeProto {
				return r.consumer.ConsumeProto(buf.Bytes())
			}
			return r.consumer.ConsumeJSON(buf.Bytes())
		})
		if errors.Is(err, errInternal) {
			r.httpReject(w, ct, http.StatusInternalServerError, ReasonInternal, err.Error())
			return
		}
		if err != nil {
			r.httpReject(w, ct, http.StatusBadRequest, ReasonDecode, "cannot decode OTLP trace request: "+err.Error())
			return
		}
		encoding := "protobuf"
		if ct == contentTypeJSON {
			encoding = "json"
		}
		r.m.requests.WithLabelValues(ProtocolHTTP, encoding).Inc()
		r.m.spans.WithLabelValues(ProtocolHTTP).Add(float64(n))
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(http.StatusOK)
		if ct == contentTypeJSON {
			_, _ = w.Write([]byte("{}"))
		}
	})
}

// readBody reads the (possibly gzip-compressed) body into buf, allowing at
// most MaxRequestBytes after decompression, so a compression bomb stops at
// the limit. A body that cannot be read (the client went away, fewer bytes
// than its Content-Length) is a read failure; a body that reads fine but
// does not decompress is a decode failure.
func (r *Receiver) readBody(req *http.Request, buf *bytes.Buffer) (int, string, error) {
	limit := int64(r.cfg.MaxRequestBytes)
	if req.ContentLength > limit {
		return http.StatusRequestEntityTooLarge, ReasonTooLarge,
			fmt.Errorf("%w: %d bytes, the limit is %d", errTooLarge, req.ContentLength, limit)
	}
	src := &errReader{r: req.Body}
	var body io.Reader = src
	switch enc := req.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, _ := gzipPool.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(src)
		} else {
			err = zr.Reset(src)
		}
		if err != nil {
			if src.err != nil {
				return http.StatusBadRequest, ReasonRead, fmt.Errorf("reading request body: %w", src.err)
			}
			return http.StatusBadRequest, ReasonDecode, fmt.Errorf("invalid gzip body: %w", err)
		}
		defer gzipPool.Put(zr)
		body = zr
	default:
		return http.StatusUnsupportedMediaType, ReasonContentEncoding,
			fmt.Errorf("unsupported content encoding %q: use gzip or none", enc)
	}
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	switch {
	case n > limit:
		return http.StatusRequestEntityTooLarge, ReasonTooLarge,
			fmt.Errorf("%w: more than %d bytes after decompression", errTooLarge, limit)
	case err == nil:
		return 0, "", nil
	case src.err != nil:
		return http.StatusBadRequest, ReasonRead, fmt.Errorf("reading request body: %w", src.err)
	default: // the body was read whole: the decompressor failed
		return http.StatusBadRequest, ReasonDecode, fmt.Errorf("invalid gzip body: %w", err)
	}
}

// errReader keeps the first error other than io.EOF that r returns.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && e.err == nil && !errors.Is(err, io.EOF) {
		e.err = err
	}
	return n, err
}

// httpReject answers with a google.rpc.Status in the request's encoding and
// counts the rejection. Decoders' messages may quote the request's bytes;
// the Status message is a protobuf string, which both encodings refuse to
// marshal unless it is valid UTF-8, so invalid bytes are replaced.
func (r *Receiver) httpReject(w http.ResponseWriter, ct string, code int, reason, msg string) {
	r.m.rejected.WithLabelValues(ProtocolHTTP, reason).Inc()
	r.logger.Debug("rejected OTLP/HTTP request", "status", code, "reason", reason, "err", msg)
	st := &spb.Status{Code: int32(grpcCode(code)), Message: strings.ToValidUTF8(msg, "\uFFFD")}
	var body []byte
	if ct == contentTypeProto {
		body, _ = proto.Marshal(st)
	} else {
		ct = contentTypeJSON
		body, _ = protojson.Marshal(st)
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func grpcCode(httpCode int) codes.Code {
	switch httpCode {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusUnsupportedMediaType, http.StatusMethodNotAllowed:
		return codes.Unimplemented
	case http.StatusInternalServerError:
		return codes.Internal
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	}
	return codes.Unknown
}
