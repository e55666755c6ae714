package spanmetrics

import (
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// valRef is an attribute value found while decoding: a slice of the request
// (string values) or of the batch arena (other values), and whether it was
// present.
type valRef struct {
	b  []byte
	ok bool
}

// resRec is what one ResourceSpans contributes to its spans.
type resRec struct {
	service, namespace, instance valRef
	dimOff                       int32 // into batch.resDims
	// Where the resource's attributes are, for target_info (rare path).
	rawOff, rawN int32 // into batch.resRaw: wire resource messages
	pmap         pcommon.Map
	hasPmap      bool
}

// spanRec is the part of a span that span metrics need.
type spanRec struct {
	name         []byte
	kind, status int32
	durNs        uint64
	res          int32
	dimOff       int32 // into batch.spanDims
}

// batch is the per-request state: every span of a request is decoded into it
// before any is counted. Batches are pooled, so steady-state ingest does not
// allocate.
type batch struct {
	nd       int
	res      []resRec
	resDims  []valRef
	resRaw   [][]byte
	spans    []spanRec
	spanDims []valRef
	arena    []byte
	key      []byte
	// invalidUTF8 counts the values of this request whose invalid UTF-8
	// was replaced.
	invalidUTF8 int
}

func (b *batch) reset(nd int) {
	b.nd = nd
	b.res = b.res[:0]
	b.resDims = b.resDims[:0]
	b.resRaw = b.resRaw[:0]
	b.spans = b.spans[:0]
	b.spanDims = b.spanDims[:0]
	b.arena = b.arena[:0]
	b.invalidUTF8 = 0
}

// clear drops every reference into the request so a pooled batch does not
// keep request buffers alive.
func (b *batch) clear() {
	clear(b.res[:cap(b.res)])
	clear(b.resDims[:cap(b.resDims)])
	clear(b.resRaw[:cap(b.resRaw)])
	clear(b.spans[:cap(b.spans)])
	clear(b.spanDims[:cap(b.spanDims)])
}

// validUTF8 returns p when it is valid UTF-8 (the common case, which
// neither copies nor allocates). Otherwise it counts p and returns a copy in
// the arena in which every run of invalid bytes is one U+FFFD, as
// bytes.ToValidUTF8 does: a label value must be valid UTF-8, and a single
// invalid byte would make the whole text exposition unparsable.
func (b *batch) validUTF8(p []byte) []byte {
	// Label values are mostly ASCII and short: a byte loop the compiler
	// inlines beats a call to utf8.Valid there.
	for _, c := range p {
		if c >= utf8.RuneSelf {
			return b.validUTF8Slow(p)
		}
	}
	return p
}

func (b *batch) validUTF8Slow(p []byte) []byte {
	if utf8.Valid(p) {
		return p
	}
	b.invalidUTF8++
	return b.arenaAppend(appendValidUTF8(b.arena, p)).b
}

// validUTF8String is validUTF8 for a string (the pdata path), returning a
// slice the batch may keep.
func (b *batch) validUTF8String(s string) []byte {
	if utf8.ValidString(s) {
		return []byte(s)
	}
	b.invalidUTF8++
	return []byte(strings.ToValidUTF8(s, string(utf8.RuneError)))
}

// appendValidUTF8 appends p to dst with every run of invalid UTF-8 replaced
// by U+FFFD.
func appendValidUTF8(dst, p []byte) []byte {
	inRun := false
	for i := 0; i < len(p); {
		if c := p[i]; c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			inRun = false
			continue
		}
		r, w := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && w == 1 {
			if !inRun {
				dst = utf8.AppendRune(dst, utf8.RuneError)
				inRun = true
			}
			i++
			continue
		}
		dst = append(dst, p[i:i+w]...)
		i += w
		inRun = false
	}
	return dst
}

// addDims appends nd absent values and returns their offset.
func addDims(s []valRef, nd int) ([]valRef, int32) {
	off := len(s)
	s = append(s, make([]valRef, nd)...)[:off+nd]
	for i := off; i < off+nd; i++ {
		s[i] = valRef{}
	}
	return s, int32(off)
}

// targetAttributes renders the target_info labels of r: job, instance and
// every other resource attribute, keys sanitised, the first of duplicate
// keys winning. Runs once per new target.
func (b *batch) targetAttributes(r *resRec) []Label {
	var out []Label
	job := string(r.service.b)
	if r.namespace.ok && len(r.namespace.b) > 0 {
		job = string(r.namespace.b) + "/" + job
	}
	out = append(out, Label{"job", job})
	if r.instance.ok && len(r.instance.b) > 0 {
		out = append(out, Label{"instance", string(r.instance.b)})
	}
	seen := map[string]bool{"job": true, "instance": true}
	ident := len(out)
	add := func(k, v string) {
		switch k {
		case AttrServiceName, AttrServiceNamespace, AttrServiceInstanceID:
			return
		}
		l := SanitizeLabel(k)
		if l == "" || seen[l] || v == "" {
			return
		}
		if !utf8.ValidString(v) {
			v = strings.ToValidUTF8(v, string(utf8.RuneError))
		}
		seen[l] = true
		out = append(out, Label{l, v})
	}
	if r.hasPmap {
		r.pmap.Range(func(k string, v pcommon.Value) bool {
			add(k, v.AsString())
			return true
		})
	} else {
		for _, raw := range b.resRaw[r.rawOff : r.rawOff+r.rawN] {
			rangeResourceAttributes(raw, func(k []byte, v []byte) {
				add(string(k), string(v))
			})
		}
	}
	if len(out) == ident {
		// Only job/instance: like the Prometheus exporter, no target_info.
		return nil
	}
	return out
}
