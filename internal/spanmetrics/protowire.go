package spanmetrics

import (
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
)

var wantWireType = [...]int{fkVarint: wtVarint, fkI64: wtI64, fkI32: wtI32, fkLen: wtLen,
	fkTraceID: wtLen, fkSpanID: wtLen, fkKV: wtLen}

// fieldSpec is one field of a message: its kind, and its name as pdata's
// errors spell it.
type fieldSpec struct {
	kind fieldKind
	name string
}

// msgSchema lists the fields pdata knows in one message.
type msgSchema struct {
	fields []fieldSpec // indexed by field number
	// far is a field numbered beyond fields (ResourceSpans' deprecated
	// scope spans); farNum is 0 when there is none.
	farNum int32
	far    fieldSpec
}

func (s *msgSchema) spec(num int32) fieldSpec {
	if uint32(num) < uint32(len(s.fields)) {
		return s.fields[num]
	}
	if num == s.farNum {
		return s.far
	}
	return fieldSpec{}
}

// fieldReader walks the fields of one message in wire order, the way
// pdata's generated UnmarshalProto loops do: next reads a tag, skips the
// field if the schema does not know it, checks the wire type of a known
// field, reads its value and stops there. Callers switch on num:
//
//	f := newFieldReader(buf, &spanSchema)
//	for f.next() {
//		switch f.num { ... }
//	}
//	return f.err
type fieldReader struct {
	buf    []byte
	i      int
	schema *msgSchema

	// The current field.
	num  int32
	v    uint64 // the value of a varint or fixed64 field, else 0
	data []byte // the payload of a length-delimited field, else nil
	kind fieldKind

	err error
}

func newFieldReader(buf []byte, schema *msgSchema) fieldReader {
	return fieldReader{buf: buf, schema: schema}
}

// next advances to the next known field. It returns false at the end of
// the message or on the first error, which it leaves in err. Trace and span
// IDs have their length checked here.
func (f *fieldReader) next() bool {
	buf, i := f.buf, f.i
	for i < len(buf) {
		var num int32
		var wt int
		var err error
		if c := buf[i]; c >= 0x08 && c < 0x80 {
			// One-byte tag, inlined: the common case.
			num, wt = int32(c>>3), int(c&7)
			i++
		} else if num, wt, i, err = tag(buf, i); err != nil {
			return f.fail(err)
		}
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
		f.num, f.kind, f.v, f.data = num, spec.kind, 0, nil
		switch spec.kind {
		case fkVarint:
			if i < len(buf) && buf[i] < 0x80 {
				f.v = uint64(buf[i])
				i++
			} else if f.v, i, err = varint(buf, i); err != nil {
				return f.fail(err)
			}
		case fkI64:
			if f.v, i, err = fixed64(buf, i); err != nil {
				return f.fail(err)
			}
		case fkI32:
			if i, err = skipFixed32(buf, i); err != nil {
				return f.fail(err)
			}
		default:
			s, e, err := length(buf, i)
			if err != nil {
				return f.fail(err)
			}
			i = e
			f.data = buf[s:e]
			switch spec.kind {
			case fkTraceID:
				err = checkID(e-s, 16, errTraceID)
			case fkSpanID:
				err = checkID(e-s, 8, errSpanID)
			}
			if err != nil {
				return f.fail(err)
			}
		}
		f.i = i
		return true
	}
	f.i = i
	return false
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
