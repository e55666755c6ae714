// Package spanmetrics turns spans into RED series: a calls counter and a
// duration histogram per service, span name, span kind, status code and
// configured dimensions, named compatibly with the OpenTelemetry Collector's
// spanmetrics connector.
//
// It owns the hot path (OTLP protobuf bytes → series key → increment), the
// cardinality limit, idle-series expiry and the periodic snapshot that every
// sink (exposition, storage, remote write) receives. It does no I/O: callers
// hand it request bytes or ptrace.Traces and read snapshots.
//
// Ingest allocates nothing per span in steady state and takes no global lock:
// series live in a sharded map, each series has its own small mutex, and a
// snapshot copies series one at a time, so it never stops ingestion.
package spanmetrics
