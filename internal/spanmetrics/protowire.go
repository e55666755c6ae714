package spanmetrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// This file walks protobuf messages the way pdata's generated decoders do:
// the primitives (varints, tags, lengths, unknown fields and groups) and
// fieldReader, which steps through the fields of one message against a
// schema of its known fields. The OTLP schemas and decoders are in wire.go.

var (
	errOverflow      = errors.New("proto: integer overflow")
	errInvalidLength = errors.New("proto: negative length found during unmarshaling")
	errIllegalTag    = errors.New("proto: illegal tag")
	errEndOfGroup    = errors.New("proto: unexpected end of group")
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
)

func wireTypeErr(field string, wt int) error {
	return fmt.Errorf("proto: wrong wireType = %d for field %s", wt, field)
}

// varint reads a varint at b[i:], returning the value and the next index.
// Hot paths test for the one-byte case themselves before calling it.
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
	t, i, err := varint(b, i)
	if err != nil {
		return 0, 0, 0, err
	}
	num := int32(t >> 3)
	if num <= 0 {
		return 0, 0, 0, errIllegalTag
	}
	return num, int(t & 7), i, nil
}

// length reads a length prefix and returns the bounds of the payload.
func length(b []byte, i int) (int, int, error) {
	n, i, err := varint(b, i)
	if err != nil {
		return 0, 0, err
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
	return binary.LittleEndian.Uint64(b[i:]), i + 8, nil
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

// fieldKind is what a message schema expects of a field.
type fieldKind uint8

const (
	fkUnknown fieldKind = iota // not in the message: skipped
	fkVarint
	fkI64
	fkI32
	fkLen     // string, bytes, or a message that its decoder reads
	fkTraceID // bytes of length 0 or 16
	fkSpanID  // bytes of length 0 or 8
	fkKV      // a KeyValue
	numFieldKinds
)

var (
	wantWireType = [numFieldKinds]int{fkVarint: wtVarint, fkI64: wtI64, fkI32: wtI32, fkLen: wtLen,
		fkTraceID: wtLen, fkSpanID: wtLen, fkKV: wtLen}
	// idLength is the length of a non-empty ID field, 0 for other kinds.
	idLength = [numFieldKinds]int{fkTraceID: 16, fkSpanID: 8}
)

// fieldSpec is one field of a message: its number, its kind, and its name
// as pdata's errors spell it.
type fieldSpec struct {
	num  int32
	kind fieldKind
	name string
}

// msgSchema lists the fields pdata knows in one message.
type msgSchema struct {
	fields []fieldSpec // indexed by field number, up to maxDenseField
	// far is the one field numbered above maxDenseField, if any
	// (ResourceSpans' deprecated scope spans).
	far fieldSpec
	// byTag maps a one-byte tag (field number and wire type) to the kind
	// of a known field with the right wire type, and every other byte to
	// fkUnknown: the fast path of fieldReader.read.
	byTag [0x80]fieldKind
}

const maxDenseField = 63

func newSchema(specs []fieldSpec) *msgSchema {
	s := &msgSchema{}
	for _, sp := range specs {
		switch {
		case sp.num <= 0 || sp.kind == fkUnknown:
			panic("spanmetrics: bad field spec " + sp.name)
		case sp.num <= maxDenseField:
			if int(sp.num) >= len(s.fields) {
				s.fields = append(s.fields, make([]fieldSpec, int(sp.num)+1-len(s.fields))...)
			}
			s.fields[sp.num] = sp
		case s.far.num == 0:
			s.far = sp
		default:
			panic("spanmetrics: two far fields in a schema: " + sp.name)
		}
		if t := int(sp.num)<<3 | wantWireType[sp.kind]; t < len(s.byTag) {
			s.byTag[t] = sp.kind
		}
	}
	return s
}

func (s *msgSchema) spec(num int32) fieldSpec {
	if uint32(num) < uint32(len(s.fields)) {
		return s.fields[num]
	}
	if num == s.far.num {
		return s.far
	}
	return fieldSpec{}
}

// fieldReader walks the fields of one message in wire order, the way
// pdata's generated UnmarshalProto loops do: next reads a tag, skips the
// field if the schema does not know it, checks the wire type of a known
// field, reads its value (v, or the payload: data) and stops there.
// Callers switch on num:
//
//	f := newFieldReader(buf, spanSchema)
//	for f.next() {
//		switch f.num { ... }
//	}
//	return f.err
type fieldReader struct {
	buf    []byte
	i      int
	schema *msgSchema

	// The current field. Its payload is kept as bounds, not as a slice:
	// storing a pointer would cost a write barrier check per field.
	num  int32
	kind fieldKind
	v    uint64 // the value of a varint or fixed64 field
	s, e int    // the bounds of a length-delimited field's payload in buf

	err error
}

func newFieldReader(buf []byte, schema *msgSchema) fieldReader {
	return fieldReader{buf: buf, schema: schema}
}

// next advances to the next known field. It returns false at the end of
// the message or on the first error, which it leaves in err. Trace and span
// IDs have their length checked here. It is small enough to inline, so the
// end of a message costs no call.
func (f *fieldReader) next() bool {
	return f.i < len(f.buf) && f.read()
}

// read is next after the end-of-message test. It decodes the common shapes
// itself: a one-byte tag of a known field with its wire type, followed by
// a one-byte varint, a fixed64, or a length of one or two bytes. Anything
// else goes to readAny.
func (f *fieldReader) read() bool {
	buf, i := f.buf, f.i
	c := buf[i]
	if c >= 0x80 || i+1 >= len(buf) {
		return f.readAny()
	}
	switch kind := f.schema.byTag[c]; kind {
	case fkVarint:
		if v := buf[i+1]; v < 0x80 {
			f.num, f.kind, f.v, f.i = int32(c>>3), kind, uint64(v), i+2
			return true
		}
	case fkI64:
		if v, j, err := fixed64(buf, i+1); err == nil {
			f.num, f.kind, f.v, f.i = int32(c>>3), kind, v, j
			return true
		}
	case fkLen, fkKV, fkTraceID, fkSpanID:
		n, s := int(buf[i+1]), i+2
		if n >= 0x80 {
			if s >= len(buf) || buf[s] >= 0x80 {
				break
			}
			n, s = n&0x7f|int(buf[s])<<7, s+1
		}
		if want := idLength[kind]; n <= len(buf)-s && (want == 0 || n == 0 || n == want) {
			f.num, f.kind, f.s, f.e, f.i = int32(c>>3), kind, s, s+n, s+n
			return true
		}
	}
	return f.readAny()
}

// readAny is read for any input.
func (f *fieldReader) readAny() bool {
	buf, i := f.buf, f.i
	for i < len(buf) {
		num, wt, j, err := tag(buf, i)
		if err != nil {
			return f.fail(err)
		}
		i = j
		spec := f.schema.spec(num)
		if spec.kind == fkUnknown {
			if i, err = skipUnknown(buf, i, wt); err != nil {
				return f.fail(err)
			}
			continue
		}
		if wt != wantWireType[spec.kind] {
			return f.fail(wireTypeErr(spec.name, wt))
		}
		f.num, f.kind = num, spec.kind
		switch spec.kind {
		case fkVarint:
			f.v, i, err = varint(buf, i)
		case fkI64:
			f.v, i, err = fixed64(buf, i)
		case fkI32:
			i, err = skipFixed32(buf, i)
		default:
			if f.s, f.e, err = length(buf, i); err != nil {
				break
			}
			i = f.e
			switch spec.kind {
			case fkTraceID:
				err = checkID(f.e-f.s, idLength[fkTraceID], errTraceID)
			case fkSpanID:
				err = checkID(f.e-f.s, idLength[fkSpanID], errSpanID)
			}
		}
		if err != nil {
			return f.fail(err)
		}
		f.i = i
		return true
	}
	f.i = i
	return false
}

// data is the payload of the current length-delimited field.
func (f *fieldReader) data() []byte {
	return f.buf[f.s:f.e]
}

func (f *fieldReader) fail(err error) bool {
	f.err = err
	f.i = len(f.buf)
	return false
}

func checkID(n, want int, err error) error {
	if n != 0 && n != want {
		return err
	}
	return nil
}
