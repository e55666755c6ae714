package spanmetrics

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
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
// ResourceSpans field 1000 used when field 2 is absent.

var (
	errOverflow      = errors.New("proto: integer overflow")
	errInvalidLength = errors.New("proto: negative length found during unmarshaling")
	errIllegalTag    = errors.New("proto: illegal tag")
	errEndOfGroup    = errors.New("proto: unexpected end of group")
	errDepth         = errors.New("proto: exceeded max recursion depth")
	errTraceID       = errors.New("invalid trace ID length")
	errSpanID        = errors.New("invalid span ID length")
)

const (
	wtVarint = 0
	wtI64    = 1
	wtLen    = 2
	wtSGroup = 3
	wtEGroup = 4
	wtI32    = 5

	recursionLimit = 100
)

func wireTypeErr(field string, wt int) error {
	return fmt.Errorf("proto: wrong wireType = %d for field %s", wt, field)
}

// varint reads a varint at b[i:], returning the value and the next index.
// The common one-byte case is handled inline by callers via uvarint.
func varint(b []byte, i int) (uint64, int, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if i >= len(b) {
			return 0, 0, io.ErrUnexpectedEOF
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i, nil
		}
	}
	return 0, 0, errOverflow
}

// tag reads a field tag.
func tag(b []byte, i int) (int32, int, int, error) {
	var t uint64
	if i < len(b) && b[i] < 0x80 {
		t = uint64(b[i])
		i++
	} else {
		var err error
		if t, i, err = varint(b, i); err != nil {
			return 0, 0, 0, err
		}
	}
	num := int32(t >> 3)
	if num <= 0 {
		return 0, 0, 0, errIllegalTag
	}
	return num, int(t & 7), i, nil
}

// length reads a length prefix and returns the bounds of the payload.
func length(b []byte, i int) (int, int, error) {
	var n uint64
	if i < len(b) && b[i] < 0x80 {
		n = uint64(b[i])
		i++
	} else {
		var err error
		if n, i, err = varint(b, i); err != nil {
			return 0, 0, err
		}
	}
	if int(n) < 0 {
		return 0, 0, errInvalidLength
	}
	end := i + int(n)
	if end < i || end > len(b) {
		return 0, 0, io.ErrUnexpectedEOF
	}
	return i, end, nil
}

func fixed64(b []byte, i int) (uint64, int, error) {
	if len(b)-i < 8 {
		return 0, 0, io.ErrUnexpectedEOF
	}
	v := uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24 |
		uint64(b[i+4])<<32 | uint64(b[i+5])<<40 | uint64(b[i+6])<<48 | uint64(b[i+7])<<56
	return v, i + 8, nil
}

func skipFixed32(b []byte, i int) (int, error) {
	if len(b)-i < 4 {
		return 0, io.ErrUnexpectedEOF
	}
	return i + 4, nil
}

// skipUnknown skips an unknown field whose tag has been read, exactly as
// pdata's ConsumeUnknown does, including its handling of groups (it returns
// after the first non-group field inside a group).
func skipUnknown(b []byte, i, wt int) (int, error) {
	depth := 0
	for {
		if i >= len(b) {
			return 0, io.ErrUnexpectedEOF
		}
		var err error
		switch wt {
		case wtVarint:
			_, i, err = varint(b, i)
			return i, err
		case wtI64:
			if len(b)-i < 8 {
				return 0, io.ErrUnexpectedEOF
			}
			return i + 8, nil
		case wtLen:
			_, i, err = length(b, i)
			return i, err
		case wtI32:
			return skipFixed32(b, i)
		case wtSGroup:
			depth++
		case wtEGroup:
			if depth == 0 {
				return 0, errEndOfGroup
			}
			depth--
		default:
			return 0, fmt.Errorf("proto: illegal wireType %d", wt)
		}
		if depth == 0 {
			return i, nil
		}
		if _, wt, i, err = tag(b, i); err != nil {
			return 0, err
		}
	}
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
	for i := 0; i < len(buf); {
		num, wt, j, err := tag(buf, i)
		if err != nil {
			return err
		}
		i = j
		if num == 1 {
			if wt != wtLen {
				return wireTypeErr("ResourceSpans", wt)
			}
			s, e, err := length(buf, i)
			if err != nil {
				return err
			}
			if err := a.decodeResourceSpans(b, buf[s:e]); err != nil {
				return err
			}
			i = e
			continue
		}
		if i, err = skipUnknown(buf, i, wt); err != nil {
			return err
		}
	}
	return nil
}

func (a *Aggregator) decodeResourceSpans(b *batch, buf []byte) error {
	nd := len(a.dims)
	r := resRec{rawOff: int32(len(b.resRaw))}
	b.resDims, r.dimOff = addDims(b.resDims, nd)
	hasScopeSpans := false
	// Pass 1: the resource (it may follow the spans on the wire) and
	// validation of everything but scope spans.
	for i := 0; i < len(buf); {
		num, wt, j, err := tag(buf, i)
		if err != nil {
			return err
		}
		i = j
		switch num {
		case 1, 2, 3, 1000:
			if wt != wtLen {
				return wireTypeErr("ResourceSpans", wt)
			}
			s, e, err := length(buf, i)
			if err != nil {
				return err
			}
			i = e
			switch num {
			case 1:
				b.resRaw = append(b.resRaw, buf[s:e])
				r.rawN++
				if err := a.decodeResource(b, &r, buf[s:e]); err != nil {
					return err
				}
			case 2:
				hasScopeSpans = true
			}
		default:
			if i, err = skipUnknown(buf, i, wt); err != nil {
				return err
			}
		}
	}
	if !r.service.ok || len(r.service.b) == 0 {
		r.service = valRef{b: unknownService, ok: true}
	}
	ri := int32(len(b.res))
	b.res = append(b.res, r)
	// Pass 2: scope spans. Field 1000 (deprecated) is decoded, and its spans
	// count only when there is no field 2, as pdata's migration does.
	for i := 0; i < len(buf); {
		num, wt, j, _ := tag(buf, i)
		i = j
		if num == 2 || num == 1000 {
			s, e, _ := length(buf, i)
			if err := a.decodeScopeSpans(b, buf[s:e], ri, num == 2 || !hasScopeSpans); err != nil {
				return err
			}
			i = e
			continue
		}
		if num == 1 || num == 3 {
			_, i, _ = length(buf, i)
			continue
		}
		i, _ = skipUnknown(buf, i, wt)
	}
	return nil
}

var unknownService = []byte(UnknownService)

func (a *Aggregator) decodeResource(b *batch, r *resRec, buf []byte) error {
	rd := b.resDims[int(r.dimOff) : int(r.dimOff)+len(a.dims)]
	for i := 0; i < len(buf); {
		num, wt, j, err := tag(buf, i)
		if err != nil {
			return err
		}
		i = j
		switch num {
		case 1:
			if wt != wtLen {
				return wireTypeErr("Attributes", wt)
			}
			s, e, err := length(buf, i)
			if err != nil {
				return err
			}
			i = e
			key, val, ok := fastKeyValue(buf[s:e])
			if !ok {
				if key, val, err = decodeKeyValue(buf[s:e], 0); err != nil {
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
		case 2:
			if wt != wtVarint {
				return wireTypeErr("DroppedAttributesCount", wt)
			}
			if _, i, err = varint(buf, i); err != nil {
				return err
			}
		case 3:
			if wt != wtLen {
				return wireTypeErr("EntityRefs", wt)
			}
			s, e, err := length(buf, i)
			if err != nil {
				return err
			}
			i = e
			if err := validateMessage(buf[s:e], &entityRefSchema, nil); err != nil {
				return err
			}
		default:
			if i, err = skipUnknown(buf, i, wt); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *Aggregator) decodeScopeSpans(b *batch, buf []byte, ri int32, collect bool) error {
	for i := 0; i < len(buf); {
		num, wt, j, err := tag(buf, i)
		if err != nil {
			return err
		}
		i = j
		switch num {
		case 1, 2, 3:
			if wt != wtLen {
				return wireTypeErr("ScopeSpans", wt)
			}
			s, e, err := length(buf, i)
			if err != nil {
				return err
			}
			i = e
			switch num {
			case 1:
				err = validateMessage(buf[s:e], &scopeSchema, nil)
			case 2:
				err = a.decodeSpan(b, buf[s:e], ri, collect)
			}
			if err != nil {
				return err
			}
		default:
			if i, err = skipUnknown(buf, i, wt); err != nil {
				return err
			}
		}
	}
	return nil
}

// fieldKind is what a message schema expects of a field.
type fieldKind uint8

const (
	fkUnknown fieldKind = iota // skipped like any unknown field
	fkVarint
	fkI64
	fkI32
	fkBytes   // string or bytes
	fkTraceID // bytes of length 0 or 16
	fkSpanID  // bytes of length 0 or 8
	fkKV      // a top-level attribute KeyValue
	fkCode    // varint kept in the code argument (Status.code)
)

// msgSchema maps field numbers to kinds, for the messages span metrics
// only validate.
type msgSchema [8]fieldKind

var (
	scopeSchema     = msgSchema{1: fkBytes, 2: fkBytes, 3: fkKV, 4: fkVarint}
	entityRefSchema = msgSchema{1: fkBytes, 2: fkBytes, 3: fkBytes, 4: fkBytes}
	eventSchema     = msgSchema{1: fkI64, 2: fkBytes, 3: fkKV, 4: fkVarint}
	linkSchema      = msgSchema{1: fkTraceID, 2: fkSpanID, 3: fkBytes, 4: fkKV, 5: fkVarint, 6: fkI32}
	statusSchema    = msgSchema{2: fkBytes, 3: fkCode} // field 1 (deprecated code) is unknown to pdata
)

var wantWireType = [...]int{fkVarint: wtVarint, fkI64: wtI64, fkI32: wtI32, fkBytes: wtLen,
	fkTraceID: wtLen, fkSpanID: wtLen, fkKV: wtLen, fkCode: wtVarint}

// validateMessage checks buf against schema as pdata's decoder would; the
// last fkCode varint, if any, is stored in code.
func validateMessage(buf []byte, schema *msgSchema, code *int32) error {
	for i := 0; i < len(buf); {
		num, wt, j, err := tag(buf, i)
		if err != nil {
			return err
		}
		i = j
		kind := fkUnknown
		if int(num) < len(schema) {
			kind = schema[num]
		}
		if kind == fkUnknown {
			if i, err = skipUnknown(buf, i, wt); err != nil {
				return err
			}
			continue
		}
		if wt != wantWireType[kind] {
			return wireTypeErr(strconv.Itoa(int(num)), wt)
		}
		switch kind {
		case fkVarint, fkCode:
			var v uint64
			if v, i, err = varint(buf, i); err == nil && kind == fkCode {
				*code = int32(v)
			}
		case fkI64:
			_, i, err = fixed64(buf, i)
		case fkI32:
			i, err = skipFixed32(buf, i)
		default:
			var s, e int
			if s, e, err = length(buf, i); err != nil {
				return err
			}
			i = e
			switch kind {
			case fkTraceID:
				err = checkID(e-s, 16, errTraceID)
			case fkSpanID:
				err = checkID(e-s, 8, errSpanID)
			case fkKV:
				_, _, err = decodeKeyValue(buf[s:e], 0)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkID(n, want int, err error) error {
	if n != 0 && n != want {
		return err
	}
	return nil
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
	for i := 0; i < len(buf); {
		var num int32
		var wt int
		var err error
		if c := buf[i]; c >= 0x08 && c < 0x80 {
			// One-byte tag, inlined: the common case.
			num, wt = int32(c>>3), int(c&7)
			i++
		} else if num, wt, i, err = tag(buf, i); err != nil {
			return err
		}
		switch num {
		case 1, 2, 3, 4, 5, 9, 11, 13, 15:
			if wt != wtLen {
				return wireTypeErr("Span", wt)
			}
			s, e, err := length(buf, i)
			if err != nil {
				return err
			}
			i = e
			switch num {
			case 1:
				err = checkID(e-s, 16, errTraceID)
			case 2, 4:
				err = checkID(e-s, 8, errSpanID)
			case 5:
				rec.name = buf[s:e]
			case 9:
				key, val, ok := fastKeyValue(buf[s:e])
				if !ok {
					key, val, err = decodeKeyValue(buf[s:e], 0)
				}
				if err == nil && collect && a.maybeDimension(key) {
					if d := a.dimensionIndex(key); d >= 0 && !sd[d].ok {
						sd[d] = b.valueString(val)
					}
				}
			case 11:
				err = validateMessage(buf[s:e], &eventSchema, nil)
			case 13:
				err = validateMessage(buf[s:e], &linkSchema, nil)
			case 15:
				// Repeated status messages merge: the last code seen wins.
				err = validateMessage(buf[s:e], &statusSchema, &rec.status)
			}
			if err != nil {
				return err
			}
		case 6, 10, 12, 14:
			if wt != wtVarint {
				return wireTypeErr("Span", wt)
			}
			var v uint64
			if i < len(buf) && buf[i] < 0x80 {
				v = uint64(buf[i])
				i++
			} else if v, i, err = varint(buf, i); err != nil {
				return err
			}
			if num == 6 {
				rec.kind = int32(v)
			}
		case 7, 8:
			if wt != wtI64 {
				return wireTypeErr("Span", wt)
			}
			var v uint64
			if v, i, err = fixed64(buf, i); err != nil {
				return err
			}
			if num == 7 {
				start = v
			} else {
				end = v
			}
		case 16:
			if wt != wtI32 {
				return wireTypeErr("Flags", wt)
			}
			if i, err = skipFixed32(buf, i); err != nil {
				return err
			}
		default:
			if i, err = skipUnknown(buf, i, wt); err != nil {
				return err
			}
		}
	}
	if collect {
		rec.durNs = duration(start, end)
		b.spans = append(b.spans, rec)
	}
	return nil
}

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
		case kv[p] == 0x0a && !haveKey:
			key, haveKey = kv[p+2:end], true
		case kv[p] == 0x12 && !haveVal:
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
	case 0x0a: // string_value
		if len(v) >= 2 && v[1] < 0x80 && 2+int(v[1]) == len(v) {
			return key, anyRef{field: 1, data: v[2:]}, true
		}
	case 0x10, 0x18: // bool_value, int_value
		if n, end, err := varint(v, 1); err == nil && end == len(v) {
			return key, anyRef{field: int32(v[0] >> 3), num: n}, true
		}
	case 0x21: // double_value
		if len(v) == 9 {
			n, _, _ := fixed64(v, 1)
			return key, anyRef{field: 4, num: n}, true
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
	for i := 0; i < len(buf); {
		num, wt, j, err := tag(buf, i)
		if err != nil {
			return nil, anyRef{}, err
		}
		i = j
		switch num {
		case 1, 2:
			if wt != wtLen {
				return nil, anyRef{}, wireTypeErr("KeyValue", wt)
			}
			s, e, err := length(buf, i)
			if err != nil {
				return nil, anyRef{}, err
			}
			i = e
			if num == 1 {
				key = buf[s:e]
			} else if err := decodeAnyValue(buf[s:e], d+1, &val); err != nil {
				return nil, anyRef{}, err
			}
		case 3:
			if wt != wtVarint {
				return nil, anyRef{}, wireTypeErr("KeyStrindex", wt)
			}
			if _, i, err = varint(buf, i); err != nil {
				return nil, anyRef{}, err
			}
		default:
			if i, err = skipUnknown(buf, i, wt); err != nil {
				return nil, anyRef{}, err
			}
		}
	}
	return key, val, nil
}

// decodeAnyValue merges the AnyValue in buf into v.
func decodeAnyValue(buf []byte, d int, v *anyRef) error {
	if d >= recursionLimit {
		return errDepth
	}
	for i := 0; i < len(buf); {
		num, wt, j, err := tag(buf, i)
		if err != nil {
			return err
		}
		i = j
		switch num {
		case 1, 5, 6, 7:
			if wt != wtLen {
				return wireTypeErr("AnyValue", wt)
			}
			s, e, err := length(buf, i)
			if err != nil {
				return err
			}
			i = e
			switch num {
			case 5:
				err = validateList(buf[s:e], d+1, false)
			case 6:
				err = validateList(buf[s:e], d+1, true)
			}
			if err != nil {
				return err
			}
			*v = anyRef{field: num, data: buf[s:e]}
		case 2, 3, 8:
			if wt != wtVarint {
				return wireTypeErr("AnyValue", wt)
			}
			var n uint64
			if n, i, err = varint(buf, i); err != nil {
				return err
			}
			*v = anyRef{field: num, num: n}
		case 4:
			if wt != wtI64 {
				return wireTypeErr("DoubleValue", wt)
			}
			var n uint64
			if n, i, err = fixed64(buf, i); err != nil {
				return err
			}
			*v = anyRef{field: num, num: n}
		default:
			if i, err = skipUnknown(buf, i, wt); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateList validates an ArrayValue (values are AnyValues) or a
// KeyValueList (values are KeyValues) at depth d.
func validateList(buf []byte, d int, kv bool) error {
	if d >= recursionLimit {
		return errDepth
	}
	for i := 0; i < len(buf); {
		num, wt, j, err := tag(buf, i)
		if err != nil {
			return err
		}
		i = j
		if num != 1 {
			if i, err = skipUnknown(buf, i, wt); err != nil {
				return err
			}
			continue
		}
		if wt != wtLen {
			return wireTypeErr("Values", wt)
		}
		s, e, err := length(buf, i)
		if err != nil {
			return err
		}
		i = e
		if kv {
			_, _, err = decodeKeyValue(buf[s:e], d+1)
		} else {
			var v anyRef
			err = decodeAnyValue(buf[s:e], d+1, &v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var (
	strTrue  = []byte("true")
	strFalse = []byte("false")
)

// valueString renders v as pcommon.Value.AsString does. Strings alias the
// request; other values are written to the batch arena.
func (b *batch) valueString(v anyRef) valRef {
	switch v.field {
	case 1:
		return valRef{b: v.data, ok: true}
	case 2:
		if v.num != 0 {
			return valRef{b: strTrue, ok: true}
		}
		return valRef{b: strFalse, ok: true}
	case 3:
		return b.arenaAppend(strconv.AppendInt(b.arena, int64(v.num), 10))
	case 4:
		return b.arenaAppend(appendDouble(b.arena, math.Float64frombits(v.num)))
	case 7:
		n := base64.StdEncoding.EncodedLen(len(v.data))
		start := len(b.arena)
		b.arena = append(b.arena, make([]byte, n)...)
		base64.StdEncoding.Encode(b.arena[start:], v.data)
		return valRef{b: b.arena[start:len(b.arena):len(b.arena)], ok: true}
	case 5, 6:
		pv := pcommon.NewValueEmpty()
		_ = pv.FromRaw(rawValue(v))
		return b.arenaAppend(append(b.arena, pv.AsString()...))
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
	case 1:
		return string(v.data)
	case 2:
		return v.num != 0
	case 3:
		return int64(v.num)
	case 4:
		return math.Float64frombits(v.num)
	case 7:
		if len(v.data) == 0 {
			return []byte(nil)
		}
		return append([]byte(nil), v.data...)
	case 5:
		out := []any{}
		rangeList(v.data, func(item []byte) {
			var iv anyRef
			_ = decodeAnyValue(item, 0, &iv)
			out = append(out, rawValue(iv))
		})
		return out
	case 6:
		out := map[string]any{}
		rangeList(v.data, func(item []byte) {
			k, iv, _ := decodeKeyValue(item, 0)
			out[string(k)] = rawValue(iv)
		})
		return out
	}
	return nil
}

// rangeList calls f with each field-1 payload of a validated message: the
// values of an ArrayValue or KeyValueList, the attributes of a Resource.
func rangeList(buf []byte, f func([]byte)) {
	for i := 0; i < len(buf); {
		num, wt, j, err := tag(buf, i)
		if err != nil {
			return
		}
		i = j
		if num == 1 && wt == wtLen {
			s, e, _ := length(buf, i)
			f(buf[s:e])
			i = e
			continue
		}
		if i, err = skipUnknown(buf, i, wt); err != nil {
			return
		}
	}
}

// rangeResourceAttributes calls f with the key and rendered value of every
// attribute of a validated Resource message (rare path: target_info).
func rangeResourceAttributes(buf []byte, f func(k, v []byte)) {
	var b batch
	rangeList(buf, func(item []byte) {
		k, v, _ := decodeKeyValue(item, 0)
		b.arena = b.arena[:0]
		f(k, b.valueString(v).b)
	})
}
