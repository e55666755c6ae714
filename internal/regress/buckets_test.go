package regress

import "math"

// classicBounds are spanwatch's default duration buckets (ms).
func classicBounds() []float64 {
	return []float64{2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000, math.Inf(1)}
}

// nativeBounds are native-histogram-like buckets at schema 3: edges
// 2^(k/8) ms from 1/256 ms to 128 s, then +Inf.
func nativeBounds() []float64 {
	var b []float64
	for k := -64; k <= 136; k++ {
		b = append(b, math.Exp2(float64(k)/8))
	}
	return append(b, math.Inf(1))
}
