package spanmetrics

import (
	"bytes"
	"errors"
	"fmt"
)

// MaxAttributeDepth is how deep attribute values may nest, counted in
// messages from the attribute's KeyValue (0) through AnyValue, ArrayValue
// or KeyValueList, and so on; a message at this depth rejects the request.
// It is pdata's protobuf recursion limit, which the protobuf reader
// mirrors, and CheckJSONNesting applies it to OTLP/JSON.
const MaxAttributeDepth = recursionLimit

// MaxJSONNesting bounds objects and arrays nested in an OTLP/JSON request
// anywhere, unknown fields included. A request valid under
// MaxAttributeDepth nests at most about 160 levels.
const MaxJSONNesting = 256

// ErrTooDeep reports an OTLP/JSON request nested past MaxAttributeDepth or
// MaxJSONNesting.
var ErrTooDeep = errors.New("request nested too deep")

var keyAttributes = []byte("attributes")

// CheckJSONNesting scans an OTLP/JSON request before it is decoded and
// reports ErrTooDeep when an attribute value nests MaxAttributeDepth
// messages deep (each protobuf message is one JSON object, so the same
// request is refused in either encoding) or the document nests more than
// MaxJSONNesting objects and arrays. It does not validate the JSON: a
// malformed document is left to the decoder.
func CheckJSONNesting(b []byte) error {
	var (
		objs, total  int  // open objects; open objects and arrays
		attrBase     int  // object depth of the attribute KeyValues; 0 outside attributes
		attrArray    int  // total depth of the open attributes array
		afterAttrKey bool // the last token was the key "attributes" and its ':'
		lastAttrStr  bool // the last string was "attributes"
	)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			end := stringEnd(b, i+1)
			if end < 0 {
				return nil
			}
			lastAttrStr = bytes.Equal(b[i+1:end], keyAttributes)
			afterAttrKey = false
			i = end
			continue
		case ':':
			afterAttrKey = lastAttrStr
			lastAttrStr = false
			continue
		case '[':
			total++
			if afterAttrKey && attrBase == 0 {
				attrBase, attrArray = objs+1, total
			}
		case ']':
			if total == attrArray {
				attrBase, attrArray = 0, 0
			}
			total--
		case '{':
			objs++
			total++
			if attrBase > 0 && objs-attrBase >= MaxAttributeDepth {
				return fmt.Errorf("%w: attribute values exceed the nesting depth limit of %d messages", ErrTooDeep, MaxAttributeDepth)
			}
		case '}':
			objs--
			total--
		}
		afterAttrKey, lastAttrStr = false, false
		if total > MaxJSONNesting {
			return fmt.Errorf("%w: more than %d nested objects and arrays (the JSON nesting depth limit)", ErrTooDeep, MaxJSONNesting)
		}
	}
	return nil
}

// stringEnd returns the index of the quote that closes the JSON string
// starting at b[i], or -1.
func stringEnd(b []byte, i int) int {
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		j += i
		n := 0 // backslashes before the quote
		for k := j - 1; k >= i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return j
		}
		i = j + 1
	}
}
