package spanmetrics

import (
	"math"
	"sort"
)

// NativeZeroThreshold is the width of the zero bucket of native histograms:
// only zero-length spans land in it.
const NativeZeroThreshold = 2.938735877055719e-39 // 2^-128, as client_golang

// nativeBounds[s] holds, for schema s > 0, the 2^s fractions in [0.5, 1) at
// which buckets start within one power of two (as Prometheus defines them).
var nativeBounds = func() [9][]float64 {
	var out [9][]float64
	for s := 1; s <= 8; s++ {
		n := 1 << s
		b := make([]float64, n)
		for j := range n {
			b[j] = math.Ldexp(math.Exp2(float64(j)/float64(n)), -1)
		}
		out[s] = b
	}
	return out
}()

// nativeIndex returns the Prometheus native-histogram bucket index of v > 0
// at schema s: bucket i holds (2^((i-1)/2^s), 2^(i/2^s)].
func nativeIndex(v float64, schema int32) int32 {
	frac, exp := math.Frexp(v)
	if schema > 0 {
		b := nativeBounds[schema]
		j := sort.SearchFloat64s(b, frac)
		return int32(j + (exp-1)*len(b))
	}
	i := int32(exp)
	if frac == 0.5 {
		i--
	}
	off := int32(1)<<-schema - 1
	return (i + off) >> -schema
}

// nativeHist is a native histogram kept as a dense window of bucket counts.
// It is guarded by its series' mutex.
type nativeHist struct {
	schema int32
	offset int32 // bucket index of counts[0]
	counts []uint64
	zero   uint64
}

func newNativeHist(schema int32) *nativeHist { return &nativeHist{schema: schema} }

func (h *nativeHist) observe(v float64, maxSize int) {
	if v <= NativeZeroThreshold {
		h.zero++
		return
	}
	i := nativeIndex(v, h.schema)
	if len(h.counts) == 0 {
		h.offset = i
		h.counts = append(h.counts[:0], 0)
	}
	for {
		lo, hi := h.offset, h.offset+int32(len(h.counts))-1
		lo, hi = min(lo, i), max(hi, i)
		if int(hi-lo+1) <= maxSize || h.schema <= -4 {
			h.grow(lo, hi)
			break
		}
		h.downscale()
		i = nativeIndex(v, h.schema)
	}
	h.counts[i-h.offset]++
}

// grow widens the window to [lo, hi].
func (h *nativeHist) grow(lo, hi int32) {
	if lo == h.offset && int(hi-lo+1) == len(h.counts) {
		return
	}
	n := int(hi - lo + 1)
	nc := make([]uint64, n, n+n/4)
	copy(nc[h.offset-lo:], h.counts)
	h.counts, h.offset = nc, lo
}

// downscale halves the resolution: bucket i at schema s becomes bucket
// ceil(i/2) at schema s-1.
func (h *nativeHist) downscale() {
	if len(h.counts) == 0 {
		h.schema--
		return
	}
	lo := (h.offset + 1) >> 1
	hi := (h.offset + int32(len(h.counts)) - 1 + 1) >> 1
	nc := make([]uint64, hi-lo+1)
	for k, c := range h.counts {
		i := h.offset + int32(k)
		nc[((i+1)>>1)-lo] += c
	}
	h.counts, h.offset = nc, lo
	h.schema--
}

// NativeHistogram is the snapshot of a native histogram: bucket i holds
// (2^((i-1)/2^Schema), 2^(i/2^Schema)], Counts[k] is bucket Offset+k.
type NativeHistogram struct {
	Schema        int32
	ZeroThreshold float64
	ZeroCount     uint64
	Offset        int32
	Counts        []uint64
}

// Spans returns the positive spans and the delta-encoded counts of h in the
// form Prometheus expects, leaving out runs of more than two empty buckets.
func (h *NativeHistogram) Spans() (offsets []int32, lengths []uint32, deltas []int64) {
	var prev int64
	last := int32(math.MinInt32)
	for k, c := range h.Counts {
		if c == 0 {
			continue
		}
		i := h.Offset + int32(k)
		gap := i - last - 1
		if last == math.MinInt32 || gap > 2 {
			if last == math.MinInt32 {
				offsets = append(offsets, i)
			} else {
				offsets = append(offsets, gap)
			}
			lengths = append(lengths, 0)
		} else {
			for range gap {
				deltas = append(deltas, -prev)
				prev = 0
				lengths[len(lengths)-1]++
			}
		}
		deltas = append(deltas, int64(c)-prev)
		prev = int64(c)
		lengths[len(lengths)-1]++
		last = i
	}
	return offsets, lengths, deltas
}
