package spanmetrics

import (
	"math"
	"slices"
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
//
// Counts are 32 bits wide, half the memory of 64-bit ones: a series holds
// one native histogram for as long as it lives, and its buckets are most
// of its size. A bucket whose count passes 2^32-1 wraps and carries into
// carry, which is allocated only then.
type nativeHist struct {
	schema int32
	offset int32    // bucket index of counts[0]
	counts []uint32 // low 32 bits of the count of buckets offset, offset+1, …
	carry  map[int32]uint32
	zero   uint64
}

func newNativeHist(schema int32) *nativeHist { return &nativeHist{schema: schema} }

func (h *nativeHist) observe(v float64, maxSize int) {
	if v <= NativeZeroThreshold {
		h.zero++
		return
	}
	i := nativeIndex(v, h.schema)
	k := int(i - h.offset)
	if k < 0 || k >= len(h.counts) {
		i = h.fit(v, i, maxSize)
		k = int(i - h.offset)
	}
	h.counts[k]++
	if h.counts[k] == 0 {
		if h.carry == nil {
			h.carry = map[int32]uint32{}
		}
		h.carry[i]++
	}
}

// fit widens the window to bucket i, v's bucket, halving the resolution
// while the window would be wider than maxSize buckets, and returns v's
// bucket at the resulting schema.
func (h *nativeHist) fit(v float64, i int32, maxSize int) int32 {
	if len(h.counts) == 0 {
		h.offset = i
		h.counts = append(h.counts[:0], 0)
		return i
	}
	for {
		lo := min(h.offset, i)
		hi := max(h.offset+int32(len(h.counts))-1, i)
		if int(hi-lo+1) <= maxSize || h.schema <= -4 {
			h.grow(lo, hi)
			return i
		}
		h.downscale()
		i = nativeIndex(v, h.schema)
	}
}

// count returns the count of bucket offset+k.
func (h *nativeHist) count(k int) uint64 {
	c := uint64(h.counts[k])
	if h.carry != nil {
		c |= uint64(h.carry[h.offset+int32(k)]) << 32
	}
	return c
}

// appendCounts appends the count of every bucket of the window to dst.
func (h *nativeHist) appendCounts(dst []uint64) []uint64 {
	if h.carry != nil {
		for k := range h.counts {
			dst = append(dst, h.count(k))
		}
		return dst
	}
	for _, c := range h.counts {
		dst = append(dst, uint64(c))
	}
	return dst
}

// grow widens the window to [lo, hi], in place when its capacity allows.
// New windows have the allocator's size class as capacity and no more:
// a window grows only when a span falls outside it, which gets rare as a
// series ages, and the extra room would be kept for the series' life.
func (h *nativeHist) grow(lo, hi int32) {
	n := int(hi - lo + 1)
	if lo == h.offset && n == len(h.counts) {
		return
	}
	old := h.counts
	var c []uint32
	if n <= cap(old) {
		c = old[:n]
	} else {
		c = slices.Grow([]uint32(nil), n)[:n]
	}
	shift := int(h.offset - lo)
	copy(c[shift:], old)
	clear(c[:shift])
	clear(c[shift+len(old):])
	h.counts, h.offset = c, lo
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
	sums := make([]uint64, hi-lo+1)
	for k := range h.counts {
		i := h.offset + int32(k)
		sums[((i+1)>>1)-lo] += h.count(k)
	}
	nc := slices.Grow([]uint32(nil), len(sums))[:len(sums)]
	h.carry = nil
	for k, c := range sums {
		nc[k] = uint32(c)
		if c>>32 != 0 {
			if h.carry == nil {
				h.carry = map[int32]uint32{}
			}
			h.carry[lo+int32(k)] = uint32(c >> 32)
		}
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
