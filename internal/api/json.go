package api

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// The encoders below write exactly what Prometheus's API writes with its
// jsoniter encoders (web/api/v1/json_codec.go, util/jsonutil): timestamps as
// unix seconds with up to three decimals, float values as strings ('f'
// format, 'e' below 1e-6 and from 1e21 on, "NaN", "+Inf", "-Inf"), native
// histograms as {count, sum, buckets: [[boundary_rule, lower, upper, count]]}
// without empty buckets, and an empty vector or matrix as []. The
// MarshalJSON methods of promql.FPoint, HPoint and Sample are not used: they
// differ in float formatting and marshal a nil Matrix as null. Scalars and
// strings use promql's own MarshalJSON, as Prometheus does.

// resultJSON marshals a query result.
type resultJSON struct{ v parser.Value }

// MarshalJSON implements json.Marshaler.
func (r resultJSON) MarshalJSON() ([]byte, error) {
	switch v := r.v.(type) {
	case promql.Matrix:
		return appendMatrix(make([]byte, 0, matrixSize(v)), v), nil
	case promql.Vector:
		return appendVector(make([]byte, 0, 64*len(v)+2), v), nil
	default:
		return json.Marshal(v)
	}
}

// labelSetsJSON marshals the /series result.
type labelSetsJSON []labels.Labels

// MarshalJSON implements json.Marshaler.
func (ls labelSetsJSON) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 128*len(ls)+2)
	b = append(b, '[')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLabels(b, l)
	}
	return append(b, ']'), nil
}

// matrixSize estimates the encoded size of m, to allocate once.
func matrixSize(m promql.Matrix) int {
	n := 2
	for _, s := range m {
		n += 128 + 32*len(s.Floats) + 256*len(s.Histograms)
	}
	return n
}

func appendMatrix(b []byte, m promql.Matrix) []byte {
	b = append(b, '[')
	for i, s := range m {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSeries(b, s)
	}
	return append(b, ']')
}

func appendSeries(b []byte, s promql.Series) []byte {
	b = append(b, `{"metric":`...)
	b = appendLabels(b, s.Metric)
	if len(s.Floats) > 0 {
		b = appendPoints(b, `,"values":[`, s.Floats, func(b []byte, p promql.FPoint) []byte {
			return appendFloat(append(appendTimestamp(b, p.T), ','), p.F)
		})
	}
	if len(s.Histograms) > 0 {
		b = appendPoints(b, `,"histograms":[`, s.Histograms, func(b []byte, p promql.HPoint) []byte {
			return appendHistogram(append(appendTimestamp(b, p.T), ','), p.H)
		})
	}
	return append(b, '}')
}

// appendPoints writes key (which opens the array) and one [timestamp,value]
// pair per point, rendered by pair, then closes the array.
func appendPoints[P any](b []byte, key string, pts []P, pair func([]byte, P) []byte) []byte {
	b = append(b, key...)
	for i, p := range pts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = pair(b, p)
		b = append(b, ']')
	}
	return append(b, ']')
}

func appendVector(b []byte, v promql.Vector) []byte {
	b = append(b, '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSample(b, s)
	}
	return append(b, ']')
}

func appendSample(b []byte, s promql.Sample) []byte {
	b = append(b, `{"metric":`...)
	b = appendLabels(b, s.Metric)
	if s.H == nil {
		b = append(b, `,"value":[`...)
	} else {
		b = append(b, `,"histogram":[`...)
	}
	b = appendTimestamp(b, s.T)
	b = append(b, ',')
	if s.H == nil {
		b = appendFloat(b, s.F)
	} else {
		b = appendHistogram(b, s.H)
	}
	return append(b, ']', '}')
}

// appendHistogram writes a native histogram as jsonutil.MarshalHistogram
// does. The boundary rule is 0: (lower, upper], 1: [lower, upper),
// 2: (lower, upper), 3: [lower, upper].
func appendHistogram(b []byte, h *histogram.FloatHistogram) []byte {
	b = append(b, `{"count":`...)
	b = appendFloat(b, h.Count)
	b = append(b, `,"sum":`...)
	b = appendFloat(b, h.Sum)
	found := false
	it := h.AllBucketIterator()
	for it.Next() {
		bucket := it.At()
		if bucket.Count == 0 {
			continue
		}
		if found {
			b = append(b, ',')
		} else {
			b = append(b, `,"buckets":[`...)
			found = true
		}
		rule := 2
		switch {
		case bucket.LowerInclusive && bucket.UpperInclusive:
			rule = 3
		case bucket.LowerInclusive:
			rule = 1
		case bucket.UpperInclusive:
			rule = 0
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(rule), 10)
		b = append(b, ',')
		b = appendFloat(b, bucket.Lower)
		b = append(b, ',')
		b = appendFloat(b, bucket.Upper)
		b = append(b, ',')
		b = appendFloat(b, bucket.Count)
		b = append(b, ']')
	}
	if found {
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendTimestamp writes milliseconds as seconds with the fraction's
// trailing zeros kept ("1.500"), as jsonutil.MarshalTimestamp does.
func appendTimestamp(b []byte, t int64) []byte {
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, t/1000, 10)
	if frac := t % 1000; frac != 0 {
		b = append(b, '.')
		if frac < 100 {
			b = append(b, '0')
		}
		if frac < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, frac, 10)
	}
	return b
}

// appendFloat writes a float as a JSON string, as jsonutil.MarshalFloat does.
func appendFloat(b []byte, f float64) []byte {
	b = append(b, '"')
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	return append(b, '"')
}

// appendLabels writes labels as a JSON object in label order.
func appendLabels(b []byte, ls labels.Labels) []byte {
	b = append(b, '{')
	first := true
	ls.Range(func(l labels.Label) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, l.Name)
		b = append(b, ':')
		b = appendString(b, l.Value)
	})
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string with encoding/json's escaping
// (HTML characters, U+2028 and U+2029 escaped; invalid UTF-8 as U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
