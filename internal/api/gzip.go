package api

import (
	"compress/gzip"
	"io"
	"strconv"
	"strings"
	"sync"
)

// gzipWriters pools compressors: each holds several hundred KiB of state.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}

// writeGzip writes body to w gzip-compressed.
func writeGzip(w io.Writer, body []byte) error {
	gz := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(gz)
	gz.Reset(w)
	if _, err := gz.Write(body); err != nil {
		return err
	}
	return gz.Close()
}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip: listed
// by name, or covered by "*", with a non-zero quality.
func acceptsGzip(header string) bool {
	star := false
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "gzip":
			return !zeroQuality(params)
		case "*":
			star = !zeroQuality(params)
		}
	}
	return star
}

// zeroQuality reports whether content-coding parameters hold q=0.
func zeroQuality(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		return err == nil && q == 0
	}
	return false
}
