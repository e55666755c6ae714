// Package export hands span-metric snapshots to the outside world: the
// Prometheus exposition on the metrics port (text, OpenMetrics and protobuf
// with native histograms) and remote write (Prometheus remote-write 1.0,
// bounded queue, retries with backoff). It renders series only through
// spanmetrics.Names, so every sink names series identically, and it never
// reaches into the aggregator: it sees snapshots only.
package export
