package detection

import (
	"math"
	"slices"
	"sort"

	"github.com/spanwatch/spanwatch/internal/regress"
)

// ClassicBounds are spanwatch's default classic bucket bounds in
// milliseconds (spanmetrics.DefaultBuckets); +Inf is implied.
var ClassicBounds = []float64{2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000}

// RecipeBounds are the recipe's classic bucket bounds in milliseconds (the
// explicit buckets of its collector config); +Inf is implied.
var RecipeBounds = []float64{2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

// NativeSchema is the schema of spanwatch's default native histograms
// (spanmetrics.DefaultExponentialConfig): bucket i holds
// (2^((i−1)/8), 2^(i/8)] ms.
const NativeSchema = 3

// Native bucket indices covered by the grid: 2^(−64/8) ≈ 0.004 ms to
// 2^(136/8) ≈ 131 s. Every scenario puts less than 1e-9 of its mass outside;
// what falls outside is counted in the first or last bucket. The range spans
// 200 buckets, more than MaxSize 160 allows in one histogram, but no
// scenario populates more than ~140 of them even over a week.
const (
	nativeLo = -64
	nativeHi = 136
)

// NativeBound is the upper edge of native bucket i at NativeSchema.
func NativeBound(i int) float64 { return math.Exp2(float64(i) / (1 << NativeSchema)) }

// Grid is the common refinement of the native buckets and one or more
// classic bucketings: the cells between consecutive edges of any of them.
// Counting requests per cell gives every histogram of the same requests
// exactly.
type Grid struct {
	// Edges are the cells' finite upper edges; cell len(Edges) holds
	// everything above the last.
	Edges []float64
	// Native[j] is the native bucket (offset by nativeLo) of cell j.
	Native []int
	// Bounds[b] are the finite bounds of classic bucketing b, and
	// Classic[b][j] is the bucket of cell j in it (len(Bounds[b]) is +Inf).
	Bounds  [][]float64
	Classic [][]int
}

// NewGrid builds the grid of the native buckets and the given classic
// bucketings (each sorted ascending, in milliseconds). The edges, and so the
// cells, depend on the union of the bounds only.
func NewGrid(classic ...[]float64) *Grid {
	var edges []float64
	for i := nativeLo; i <= nativeHi; i++ {
		edges = append(edges, NativeBound(i))
	}
	for _, b := range classic {
		edges = append(edges, b...)
	}
	sort.Float64s(edges)
	edges = slices.Compact(edges) // 2, 4, 8 are native edges too (exact)
	g := &Grid{Edges: edges, Bounds: classic}
	n := len(edges) + 1
	g.Native = make([]int, n)
	g.Classic = make([][]int, len(classic))
	for b := range classic {
		g.Classic[b] = make([]int, n)
	}
	for j := range n {
		x := math.Inf(1)
		if j < len(edges) {
			x = edges[j]
		}
		// Smallest native index whose bound ≥ x (the last one for the
		// overflow cell).
		ni := sort.Search(nativeHi-nativeLo+1, func(k int) bool { return NativeBound(k+nativeLo) >= x })
		g.Native[j] = min(ni, nativeHi-nativeLo)
		for b, bounds := range classic {
			g.Classic[b][j] = sort.SearchFloat64s(bounds, x) // len(bounds) above the last bound
		}
	}
	return g
}

// Cells is the number of cells.
func (g *Grid) Cells() int { return len(g.Edges) + 1 }

// Probs returns the probability of each cell under d.
func (g *Grid) Probs(d Dist) []float64 {
	p := make([]float64, g.Cells())
	prev := 0.0
	for j, e := range g.Edges {
		c := d.CDF(e)
		p[j] = math.Max(0, c-prev)
		prev = math.Max(prev, c)
	}
	p[len(g.Edges)] = math.Max(0, 1-prev)
	return p
}

// ClassicHistogram aggregates cell counts into classic bucketing b, as
// internal/gate's fromCumulative builds them from
// increase(…_bucket[window]): every le bucket, +Inf included.
func (g *Grid) ClassicHistogram(b int, cells []float64) regress.Histogram {
	h := regress.Histogram{
		Bounds: append(slices.Clone(g.Bounds[b]), math.Inf(1)),
		Counts: make([]float64, len(g.Bounds[b])+1),
	}
	for j, c := range cells {
		h.Counts[g.Classic[b][j]] += c
	}
	return h
}

// NativeHistogram aggregates cell counts into native buckets and returns
// them as internal/gate's fromNative does with a Prometheus query result:
// the API lists only buckets with a non-zero count, and each becomes its
// upper edge, so that a populated bucket after empty ones reaches down to
// the previous populated bucket (and the lowest one down to 0). scratch must
// have nativeHi−nativeLo+1 entries; it is overwritten.
func (g *Grid) NativeHistogram(cells, scratch []float64) regress.Histogram {
	clear(scratch)
	for j, c := range cells {
		scratch[g.Native[j]] += c
	}
	var h regress.Histogram
	for k, c := range scratch {
		if c > 0 {
			h.Bounds = append(h.Bounds, NativeBound(k+nativeLo))
			h.Counts = append(h.Counts, c)
		}
	}
	return h
}
