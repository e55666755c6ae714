package spanmetrics

import (
	"bytes"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// ConsumeJSON counts every span of an OTLP ExportTraceServiceRequest in
// JSON encoding. The request is checked for nesting (CheckJSONNesting: the
// protobuf reader's limit) before pdata decodes it whole; errors wrap
// ErrInvalidRequest and count nothing.
func (a *Aggregator) ConsumeJSON(req []byte) (int, error) {
	if len(bytes.TrimSpace(req)) == 0 {
		// An empty protobuf body is an empty request; an empty JSON body
		// is not JSON (pdata's message for it is cryptic).
		return 0, fmt.Errorf("%w: empty body: an OTLP/JSON request is a JSON object ({} for no spans)", ErrInvalidRequest)
	}
	if err := CheckJSONNesting(req); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	er := ptraceotlp.NewExportRequest()
	if err := er.UnmarshalJSON(req); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return a.ConsumeTraces(er.Traces())
}

// ConsumeTraces counts every span of td. It is the path for requests that
// arrive as OTLP/JSON (see ConsumeJSON), and the reference the protobuf reader is tested
// against. It returns the number of spans counted.
func (a *Aggregator) ConsumeTraces(td ptrace.Traces) (int, error) {
	b := a.getBatch()
	defer a.putBatch(b)
	nd := len(a.dims)
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		attrs := rs.Resource().Attributes()
		r := resRec{pmap: attrs, hasPmap: true}
		r.service = b.pdataValue(attrs, AttrServiceName)
		if !r.service.ok || len(r.service.b) == 0 {
			r.service = valRef{b: []byte(UnknownService), ok: true}
		}
		r.namespace = b.pdataValue(attrs, AttrServiceNamespace)
		r.instance = b.pdataValue(attrs, AttrServiceInstanceID)
		b.resDims, r.dimOff = addDims(b.resDims, nd)
		for d := range nd {
			b.resDims[int(r.dimOff)+d] = b.pdataValue(attrs, a.dims[d].name)
		}
		ri := int32(len(b.res))
		b.res = append(b.res, r)
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				sp := spans.At(k)
				rec := spanRec{
					name:   b.validUTF8String(sp.Name()),
					kind:   int32(sp.Kind()),
					status: int32(sp.Status().Code()),
					durNs:  duration(uint64(sp.StartTimestamp()), uint64(sp.EndTimestamp())),
					res:    ri,
				}
				b.spanDims, rec.dimOff = addDims(b.spanDims, nd)
				sattrs := sp.Attributes()
				for d := range nd {
					b.spanDims[int(rec.dimOff)+d] = b.pdataValue(sattrs, a.dims[d].name)
				}
				b.spans = append(b.spans, rec)
			}
		}
	}
	a.commit(b)
	return len(b.spans), nil
}

func (b *batch) pdataValue(m pcommon.Map, key string) valRef {
	v, ok := m.Get(key)
	if !ok {
		return valRef{}
	}
	if v.Type() == pcommon.ValueTypeStr {
		return valRef{b: b.validUTF8String(v.Str()), ok: true}
	}
	return valRef{b: b.validUTF8String(v.AsString()), ok: true}
}

// duration is end − start, or 0 when the span ends before it starts.
func duration(start, end uint64) uint64 {
	if end < start {
		return 0
	}
	return end - start
}
