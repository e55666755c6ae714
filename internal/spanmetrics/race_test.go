//go:build race

package spanmetrics

// The race detector makes sync.Pool drop objects at random, so allocation
// counts are meaningless under it.
const raceEnabled = true
