package spanmetrics

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// This file reads ExportTraceServiceRequest protobuf bytes directly, taking
// only what span metrics need and allocating nothing in steady state. It
// accepts and rejects exactly what pdata's decoder (ptraceotlp.ExportRequest
// .UnmarshalProto) does, so that both paths count the same spans; the
// differential test and the fuzz target in wire_test.go hold it to that.
// Notable pdata behaviours mirrored here: varints of up to ten bytes with
// surplus high bits ignored, field numbers truncated to int32, every known
// field checked for its wire type, trace and span IDs of 0/16 and 0/8
// bytes, a nesting limit of 100 for attribute values, singular messages
// merged when repeated, the last AnyValue oneof field winning, and
// ResourceSpans' deprecated scope spans (field 1000) used when scope_spans
// is absent. Wrong wire types are reported with pdata's field names.

var errDepth = fmt.Errorf("proto: exceeded max recursion depth: attribute values exceed the nesting depth limit of %d messages", recursionLimit)

// recursionLimit is pdata's nesting limit for attribute values.
const recursionLimit = 100

// Field numbers, named field<Message><Field> after opentelemetry-proto
// (collector/trace/v1/trace_service.proto, trace/v1/trace.proto,
// resource/v1/resource.proto, common/v1/common.proto).
const (
	// ExportTraceServiceRequest.
	fieldRequestResourceSpans = 1

	// ResourceSpans. Field 1000 is reserved in the proto; pdata decodes it
	// as DeprecatedScopeSpans (the former instrumentation_library_spans).
	fieldResourceSpansResource             = 1
	fieldResourceSpansScopeSpans           = 2
	fieldResourceSpansSchemaURL            = 3
	fieldResourceSpansDeprecatedScopeSpans = 1000

	// Resource.
	fieldResourceAttributes             = 1
	fieldResourceDroppedAttributesCount = 2
	fieldResourceEntityRefs             = 3

	// EntityRef.
	fieldEntityRefSchemaURL       = 1
	fieldEntityRefType            = 2
	fieldEntityRefIDKeys          = 3
	fieldEntityRefDescriptionKeys = 4

	// ScopeSpans.
	fieldScopeSpansScope     = 1
	fieldScopeSpansSpans     = 2
	fieldScopeSpansSchemaURL = 3

	// InstrumentationScope.
	fieldScopeName                   = 1
	fieldScopeVersion                = 2
	fieldScopeAttributes             = 3
	fieldScopeDroppedAttributesCount = 4

	// Span.
	fieldSpanTraceID                = 1
	fieldSpanSpanID                 = 2
	fieldSpanTraceState             = 3
	fieldSpanParentSpanID           = 4
	fieldSpanName                   = 5
	fieldSpanKind                   = 6
	fieldSpanStartTimeUnixNano      = 7
	fieldSpanEndTimeUnixNano        = 8
	fieldSpanAttributes             = 9
	fieldSpanDroppedAttributesCount = 10
	fieldSpanEvents                 = 11
	fieldSpanDroppedEventsCount     = 12
	fieldSpanLinks                  = 13
	fieldSpanDroppedLinksCount      = 14
	fieldSpanStatus                 = 15
	fieldSpanFlags                  = 16

	// Span.Event.
	fieldEventTimeUnixNano           = 1
	fieldEventName                   = 2
	fieldEventAttributes             = 3
	fieldEventDroppedAttributesCount = 4

	// Span.Link.
	fieldLinkTraceID                = 1
	fieldLinkSpanID                 = 2
	fieldLinkTraceState             = 3
	fieldLinkAttributes             = 4
	fieldLinkDroppedAttributesCount = 5
	fieldLinkFlags                  = 6

	// Status. Field 1 (deprecated_code) is reserved; pdata skips it.
	fieldStatusMessage = 2
	fieldStatusCode    = 3

	// KeyValue.
	fieldKeyValueKey         = 1
	fieldKeyValueValue       = 2
	fieldKeyValueKeyStrindex = 3

	// AnyValue (the value oneof).
	fieldAnyStringValue         = 1
	fieldAnyBoolValue           = 2
	fieldAnyIntValue            = 3
	fieldAnyDoubleValue         = 4
	fieldAnyArrayValue          = 5
	fieldAnyKvlistValue         = 6
	fieldAnyBytesValue          = 7
	fieldAnyStringValueStrindex = 8

	// ArrayValue and KeyValueList.
	fieldArrayValueValues   = 1
	fieldKeyValueListValues = 1
)

// The schema of every message the reader walks: the fields pdata decodes,
// with the names its errors use.
var (
	requestSchema = newSchema([]fieldSpec{
		{fieldRequestResourceSpans, fkLen, "ResourceSpans"},
	})
	resourceSpansSchema = newSchema([]fieldSpec{
		{fieldResourceSpansResource, fkLen, "Resource"},
		{fieldResourceSpansScopeSpans, fkLen, "ScopeSpans"},
		{fieldResourceSpansSchemaURL, fkLen, "SchemaUrl"},
		{fieldResourceSpansDeprecatedScopeSpans, fkLen, "DeprecatedScopeSpans"},
	})
	resourceSchema = newSchema([]fieldSpec{
		{fieldResourceAttributes, fkKV, "Attributes"},
		{fieldResourceDroppedAttributesCount, fkVarint, "DroppedAttributesCount"},
		{fieldResourceEntityRefs, fkLen, "EntityRefs"},
	})
	entityRefSchema = newSchema([]fieldSpec{
		{fieldEntityRefSchemaURL, fkLen, "SchemaUrl"},
		{fieldEntityRefType, fkLen, "Type"},
		{fieldEntityRefIDKeys, fkLen, "IdKeys"},
		{fieldEntityRefDescriptionKeys, fkLen, "DescriptionKeys"},
	})
	scopeSpansSchema = newSchema([]fieldSpec{
		{fieldScopeSpansScope, fkLen, "Scope"},
		{fieldScopeSpansSpans, fkLen, "Spans"},
		{fieldScopeSpansSchemaURL, fkLen, "SchemaUrl"},
	})
	scopeSchema = newSchema([]fieldSpec{
		{fieldScopeName, fkLen, "Name"},
		{fieldScopeVersion, fkLen, "Version"},
		{fieldScopeAttributes, fkKV, "Attributes"},
		{fieldScopeDroppedAttributesCount, fkVarint, "DroppedAttributesCount"},
	})
	spanSchema = newSchema([]fieldSpec{
		{fieldSpanTraceID, fkTraceID, "TraceId"},
		{fieldSpanSpanID, fkSpanID, "SpanId"},
		{fieldSpanTraceState, fkLen, "TraceState"},
		{fieldSpanParentSpanID, fkSpanID, "ParentSpanId"},
		{fieldSpanName, fkLen, "Name"},
		{fieldSpanKind, fkVarint, "Kind"},
		{fieldSpanStartTimeUnixNano, fkI64, "StartTimeUnixNano"},
		{fieldSpanEndTimeUnixNano, fkI64, "EndTimeUnixNano"},
		{fieldSpanAttributes, fkKV, "Attributes"},
		{fieldSpanDroppedAttributesCount, fkVarint, "DroppedAttributesCount"},
		{fieldSpanEvents, fkLen, "Events"},
		{fieldSpanDroppedEventsCount, fkVarint, "DroppedEventsCount"},
		{fieldSpanLinks, fkLen, "Links"},
		{fieldSpanDroppedLinksCount, fkVarint, "DroppedLinksCount"},
		{fieldSpanStatus, fkLen, "Status"},
		{fieldSpanFlags, fkI32, "Flags"},
	})
	eventSchema = newSchema([]fieldSpec{
		{fieldEventTimeUnixNano, fkI64, "TimeUnixNano"},
		{fieldEventName, fkLen, "Name"},
		{fieldEventAttributes, fkKV, "Attributes"},
		{fieldEventDroppedAttributesCount, fkVarint, "DroppedAttributesCount"},
	})
	linkSchema = newSchema([]fieldSpec{
		{fieldLinkTraceID, fkTraceID, "TraceId"},
		{fieldLinkSpanID, fkSpanID, "SpanId"},
		{fieldLinkTraceState, fkLen, "TraceState"},
		{fieldLinkAttributes, fkKV, "Attributes"},
		{fieldLinkDroppedAttributesCount, fkVarint, "DroppedAttributesCount"},
		{fieldLinkFlags, fkI32, "Flags"},
	})
	statusSchema = newSchema([]fieldSpec{
		{fieldStatusMessage, fkLen, "Message"},
		{fieldStatusCode, fkVarint, "Code"},
	})
	keyValueSchema = newSchema([]fieldSpec{
		{fieldKeyValueKey, fkLen, "Key"},
		{fieldKeyValueValue, fkLen, "Value"},
		{fieldKeyValueKeyStrindex, fkVarint, "KeyStrindex"},
	})
	anyValueSchema = newSchema([]fieldSpec{
		{fieldAnyStringValue, fkLen, "StringValue"},
		{fieldAnyBoolValue, fkVarint, "BoolValue"},
		{fieldAnyIntValue, fkVarint, "IntValue"},
		{fieldAnyDoubleValue, fkI64, "DoubleValue"},
		{fieldAnyArrayValue, fkLen, "ArrayValue"},
		{fieldAnyKvlistValue, fkLen, "KvlistValue"},
		{fieldAnyBytesValue, fkLen, "BytesValue"},
		{fieldAnyStringValueStrindex, fkVarint, "StringValueStrindex"},
	})
	arrayValueSchema = newSchema([]fieldSpec{
		{fieldArrayValueValues, fkLen, "Values"},
	})
	keyValueListSchema = newSchema([]fieldSpec{
		{fieldKeyValueListValues, fkKV, "Values"},
	})
)

// validateMessage checks buf against schema as pdata's decoder would, for
// the messages span metrics do not read: every field's wire type and
// length, trace and span IDs, and attributes.
func validateMessage(buf []byte, schema *msgSchema) error {
	f := newFieldReader(buf, schema)
	for f.next() {
		if f.kind == fkKV {
			if _, _, err := decodeKeyValue(f.data(), 0); err != nil {
				return err
			}
		}
	}
	return f.err
}

// anyRef is the final state of an AnyValue: the oneof field that won (0 for
// none) with its varint/fixed value or its payload.
type anyRef struct {
	field int32
	num   uint64
	data  []byte
}

// ConsumeProto counts every span of an OTLP ExportTraceServiceRequest in
// protobuf encoding. The request is decoded whole before anything is
// counted, so a rejected request counts nothing. It returns the number of
// spans counted; errors wrap ErrInvalidRequest.
func (a *Aggregator) ConsumeProto(req []byte) (int, error) {
	b := a.getBatch()
	defer a.putBatch(b)
	if err := a.decodeRequest(b, req); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	a.commit(b)
	return len(b.spans), nil
}

func (a *Aggregator) decodeRequest(b *batch, buf []byte) error {
	f := newFieldReader(buf, requestSchema)
	for f.next() {
		// resource_spans is the only field.
		if err := a.decodeResourceSpans(b, f.data()); err != nil {
			return err
		}
	}
	return f.err
}

func (a *Aggregator) decodeResourceSpans(b *batch, buf []byte) error {
	nd := len(a.dims)
	r := resRec{rawOff: int32(len(b.resRaw))}
	b.resDims, r.dimOff = addDims(b.resDims, nd)
	hasScopeSpans := false
	// Pass 1: the resource (it may follow the spans on the wire) and
	// validation of everything but scope spans.
	f := newFieldReader(buf, resourceSpansSchema)
	for f.next() {
		switch f.num {
		case fieldResourceSpansResource:
			b.resRaw = append(b.resRaw, f.data())
			r.rawN++
			if err := a.decodeResource(b, &r, f.data()); err != nil {
				return err
			}
		case fieldResourceSpansScopeSpans:
			hasScopeSpans = true
		}
	}
	if f.err != nil {
		return f.err
	}
	if !r.service.ok || len(r.service.b) == 0 {
		r.service = valRef{b: unknownService, ok: true}
	}
	ri := int32(len(b.res))
	b.res = append(b.res, r)
	// Pass 2: scope spans. The deprecated field is decoded, and its spans
	// count only when there are no scope_spans, as pdata's migration does.
	f = newFieldReader(buf, resourceSpansSchema)
	for f.next() {
		switch f.num {
		case fieldResourceSpansScopeSpans, fieldResourceSpansDeprecatedScopeSpans:
			collect := f.num == fieldResourceSpansScopeSpans || !hasScopeSpans
			if err := a.decodeScopeSpans(b, f.data(), ri, collect); err != nil {
				return err
			}
		}
	}
	return f.err
}

var unknownService = []byte(UnknownService)

func (a *Aggregator) decodeResource(b *batch, r *resRec, buf []byte) error {
	rd := b.resDims[int(r.dimOff) : int(r.dimOff)+len(a.dims)]
	f := newFieldReader(buf, resourceSchema)
	for f.next() {
		switch f.num {
		case fieldResourceAttributes:
			key, val, ok := fastKeyValue(f.data())
			if !ok {
				var err error
				if key, val, err = decodeKeyValue(f.data(), 0); err != nil {
					return err
				}
			}
			switch string(key) {
			case AttrServiceName:
				if !r.service.ok {
					r.service = b.valueString(val)
				}
			case AttrServiceNamespace:
				if !r.namespace.ok {
					r.namespace = b.valueString(val)
				}
			case AttrServiceInstanceID:
				if !r.instance.ok {
					r.instance = b.valueString(val)
				}
			}
			if d := a.dimensionIndex(key); d >= 0 && !rd[d].ok {
				rd[d] = b.valueString(val)
			}
		case fieldResourceEntityRefs:
			if err := validateMessage(f.data(), entityRefSchema); err != nil {
				return err
			}
		}
	}
	return f.err
}

func (a *Aggregator) decodeScopeSpans(b *batch, buf []byte, ri int32, collect bool) error {
	f := newFieldReader(buf, scopeSpansSchema)
	for f.next() {
		var err error
		switch f.num {
		case fieldScopeSpansScope:
			err = validateMessage(f.data(), scopeSchema)
		case fieldScopeSpansSpans:
			err = a.decodeSpan(b, f.data(), ri, collect)
		}
		if err != nil {
			return err
		}
	}
	return f.err
}

func (a *Aggregator) decodeSpan(b *batch, buf []byte, ri int32, collect bool) error {
	nd := len(a.dims)
	rec := spanRec{res: ri}
	var sd []valRef
	if collect {
		b.spanDims, rec.dimOff = addDims(b.spanDims, nd)
		sd = b.spanDims[int(rec.dimOff) : int(rec.dimOff)+nd]
	}
	var start, end uint64
	f := newFieldReader(buf, spanSchema)
	for f.next() {
		var err error
		switch f.num {
		case fieldSpanName:
			rec.name = f.data()
		case fieldSpanKind:
			rec.kind = int32(f.v)
		case fieldSpanStartTimeUnixNano:
			start = f.v
		case fieldSpanEndTimeUnixNano:
			end = f.v
		case fieldSpanAttributes:
			key, val, ok := fastKeyValue(f.data())
			if !ok {
				key, val, err = decodeKeyValue(f.data(), 0)
			}
			if err == nil && collect && a.maybeDimension(key) {
				if d := a.dimensionIndex(key); d >= 0 && !sd[d].ok {
					sd[d] = b.valueString(val)
				}
			}
		case fieldSpanEvents:
			err = validateMessage(f.data(), eventSchema)
		case fieldSpanLinks:
			err = validateMessage(f.data(), linkSchema)
		case fieldSpanStatus:
			// Repeated status messages merge: the last code seen wins.
			rec.status, err = decodeStatus(f.data(), rec.status)
		}
		if err != nil {
			return err
		}
	}
	if f.err != nil {
		return f.err
	}
	if collect {
		rec.name = b.validUTF8(rec.name)
		rec.durNs = duration(start, end)
		b.spans = append(b.spans, rec)
	}
	return nil
}

// decodeStatus validates a Status and returns its code, or code when it
// has none.
func decodeStatus(buf []byte, code int32) (int32, error) {
	f := newFieldReader(buf, statusSchema)
	for f.next() {
		if f.num == fieldStatusCode {
			code = int32(f.v)
		}
	}
	return code, f.err
}

// Tags of the fields that fastKeyValue reads.
const (
	tagKeyValueKey      = fieldKeyValueKey<<3 | wtLen
	tagKeyValueValue    = fieldKeyValueValue<<3 | wtLen
	tagAnyStringValue   = fieldAnyStringValue<<3 | wtLen
	tagAnyBoolValue     = fieldAnyBoolValue<<3 | wtVarint
	tagAnyIntValue      = fieldAnyIntValue<<3 | wtVarint
	tagAnyDoubleValue   = fieldAnyDoubleValue<<3 | wtI64
	anyDoubleValueBytes = 1 + 8 // tag and fixed64
)

// fastKeyValue decodes the common shape of a top-level attribute: one key
// and one scalar value, in either order (pdata writes the value first), with
// one-byte lengths. Input of that shape is valid by construction; anything
// else reports ok=false and goes to decodeKeyValue.
func fastKeyValue(kv []byte) (key []byte, val anyRef, ok bool) {
	var v []byte
	haveKey, haveVal := false, false
	for p := 0; p < len(kv); {
		if p+2 > len(kv) || kv[p+1] >= 0x80 {
			return nil, anyRef{}, false
		}
		end := p + 2 + int(kv[p+1])
		if end > len(kv) {
			return nil, anyRef{}, false
		}
		switch {
		case kv[p] == tagKeyValueKey && !haveKey:
			key, haveKey = kv[p+2:end], true
		case kv[p] == tagKeyValueValue && !haveVal:
			v, haveVal = kv[p+2:end], true
		default:
			return nil, anyRef{}, false
		}
		p = end
	}
	if !haveKey || !haveVal {
		return nil, anyRef{}, false
	}
	if len(v) == 0 {
		return key, anyRef{}, true
	}
	switch v[0] {
	case tagAnyStringValue:
		if len(v) >= 2 && v[1] < 0x80 && 2+int(v[1]) == len(v) {
			return key, anyRef{field: fieldAnyStringValue, data: v[2:]}, true
		}
	case tagAnyBoolValue, tagAnyIntValue:
		if n, end, err := varint(v, 1); err == nil && end == len(v) {
			return key, anyRef{field: int32(v[0] >> 3), num: n}, true
		}
	case tagAnyDoubleValue:
		if len(v) == anyDoubleValueBytes {
			n, _, _ := fixed64(v, 1)
			return key, anyRef{field: fieldAnyDoubleValue, num: n}, true
		}
	}
	return nil, anyRef{}, false
}

// decodeKeyValue decodes and validates a KeyValue at nesting depth d. The
// last key field wins; repeated value fields merge, so the last oneof field
// of any of them wins.
func decodeKeyValue(buf []byte, d int) (key []byte, val anyRef, err error) {
	if d >= recursionLimit {
		return nil, anyRef{}, errDepth
	}
	f := newFieldReader(buf, keyValueSchema)
	for f.next() {
		switch f.num {
		case fieldKeyValueKey:
			key = f.data()
		case fieldKeyValueValue:
			if err := decodeAnyValue(f.data(), d+1, &val); err != nil {
				return nil, anyRef{}, err
			}
		}
	}
	if f.err != nil {
		return nil, anyRef{}, f.err
	}
	return key, val, nil
}

// decodeAnyValue merges the AnyValue in buf into v.
func decodeAnyValue(buf []byte, d int, v *anyRef) error {
	if d >= recursionLimit {
		return errDepth
	}
	f := newFieldReader(buf, anyValueSchema)
	for f.next() {
		var err error
		switch f.num {
		case fieldAnyArrayValue:
			err = validateList(f.data(), d+1, false)
		case fieldAnyKvlistValue:
			err = validateList(f.data(), d+1, true)
		}
		if err != nil {
			return err
		}
		if f.kind == fkLen {
			*v = anyRef{field: f.num, data: f.data()}
		} else {
			*v = anyRef{field: f.num, num: f.v}
		}
	}
	return f.err
}

// validateList validates an ArrayValue (values are AnyValues) or a
// KeyValueList (values are KeyValues) at depth d.
func validateList(buf []byte, d int, kv bool) error {
	if d >= recursionLimit {
		return errDepth
	}
	schema := arrayValueSchema
	if kv {
		schema = keyValueListSchema
	}
	f := newFieldReader(buf, schema)
	for f.next() {
		var err error
		if kv {
			_, _, err = decodeKeyValue(f.data(), d+1)
		} else {
			var v anyRef
			err = decodeAnyValue(f.data(), d+1, &v)
		}
		if err != nil {
			return err
		}
	}
	return f.err
}

var (
	strTrue  = []byte("true")
	strFalse = []byte("false")
)

// valueString renders v as pcommon.Value.AsString does. Strings alias the
// request; other values are written to the batch arena.
func (b *batch) valueString(v anyRef) valRef {
	switch v.field {
	case fieldAnyStringValue:
		return valRef{b: b.validUTF8(v.data), ok: true}
	case fieldAnyBoolValue:
		if v.num != 0 {
			return valRef{b: strTrue, ok: true}
		}
		return valRef{b: strFalse, ok: true}
	case fieldAnyIntValue:
		return b.arenaAppend(strconv.AppendInt(b.arena, int64(v.num), 10))
	case fieldAnyDoubleValue:
		return b.arenaAppend(appendDouble(b.arena, math.Float64frombits(v.num)))
	case fieldAnyBytesValue:
		n := base64.StdEncoding.EncodedLen(len(v.data))
		start := len(b.arena)
		b.arena = append(b.arena, make([]byte, n)...)
		base64.StdEncoding.Encode(b.arena[start:], v.data)
		return valRef{b: b.arena[start:len(b.arena):len(b.arena)], ok: true}
	case fieldAnyArrayValue, fieldAnyKvlistValue:
		pv := pcommon.NewValueEmpty()
		_ = pv.FromRaw(rawValue(v))
		return b.arenaAppend(append(b.arena, b.validUTF8String(pv.AsString())...))
	}
	// No value, or a string-table index (unresolved for traces): empty.
	return valRef{b: nil, ok: true}
}

// arenaAppend records that grown is b.arena with a value appended at the old
// end, and returns a reference to that value.
func (b *batch) arenaAppend(grown []byte) valRef {
	start := len(b.arena)
	b.arena = grown
	return valRef{b: grown[start:len(grown):len(grown)], ok: true}
}

// appendDouble formats f as pcommon does (the ECMAScript number rule).
func appendDouble(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(dst) - start
		if n >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-3] == '-' && dst[len(dst)-2] == '0' {
			dst[len(dst)-2] = dst[len(dst)-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}

// rawValue converts an already validated AnyValue to the Go value that
// pcommon.Value.FromRaw takes (rare path: array and kvlist dimensions).
func rawValue(v anyRef) any {
	switch v.field {
	case fieldAnyStringValue:
		return string(v.data)
	case fieldAnyBoolValue:
		return v.num != 0
	case fieldAnyIntValue:
		return int64(v.num)
	case fieldAnyDoubleValue:
		return math.Float64frombits(v.num)
	case fieldAnyBytesValue:
		if len(v.data) == 0 {
			return []byte(nil)
		}
		return append([]byte(nil), v.data...)
	case fieldAnyArrayValue:
		out := []any{}
		rangeField(v.data, arrayValueSchema, fieldArrayValueValues, func(item []byte) {
			var iv anyRef
			_ = decodeAnyValue(item, 0, &iv)
			out = append(out, rawValue(iv))
		})
		return out
	case fieldAnyKvlistValue:
		out := map[string]any{}
		rangeField(v.data, keyValueListSchema, fieldKeyValueListValues, func(item []byte) {
			k, iv, _ := decodeKeyValue(item, 0)
			out[string(k)] = rawValue(iv)
		})
		return out
	}
	return nil
}

// rangeField calls fn with the payload of every field num of a validated
// message (rare paths).
func rangeField(buf []byte, schema *msgSchema, num int32, fn func([]byte)) {
	f := newFieldReader(buf, schema)
	for f.next() {
		if f.num == num {
			fn(f.data())
		}
	}
}

// rangeResourceAttributes calls f with the key and rendered value of every
// attribute of a validated Resource message (rare path: target_info).
func rangeResourceAttributes(buf []byte, f func(k, v []byte)) {
	var b batch
	rangeField(buf, resourceSchema, fieldResourceAttributes, func(item []byte) {
		k, v, _ := decodeKeyValue(item, 0)
		b.arena = b.arena[:0]
		f(k, b.valueString(v).b)
	})
}
