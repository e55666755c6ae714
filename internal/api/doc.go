// Package api owns spanwatch's Prometheus-compatible HTTP API under
// /api/v1/: the handlers for instant and range queries, series, label names
// and values, metadata, exemplars (always empty), build information and query
// formatting; parameter parsing; the JSON envelope with Prometheus's value
// encoding; and the mapping of errors to Prometheus's errorType values and
// HTTP status codes.
//
// It evaluates PromQL through internal/query and reads series only through a
// storage.Queryable. It must not import prometheus/tsdb (internal/store owns
// the TSDB) nor prometheus/web/api/v1, and it opens no listener: the caller
// mounts it on an http.ServeMux with Register.
package api
