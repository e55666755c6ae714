// Package export hands span-metric snapshots to the outside world: the
// Prometheus exposition on the metrics port (text, OpenMetrics and protobuf
// with native histograms). It renders series only through
// spanmetrics.Names, so every sink names series identically, and it never
// reaches into the aggregator: it sees snapshots only.
package export
