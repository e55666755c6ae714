// Package gate decides whether a deploy made a service slower or less
// reliable: it reads two populations (baseline and candidate) of span
// metrics from any Prometheus-compatible API, waits until there is enough
// data instead of sleeping, hands the bucket counts to internal/regress,
// reports the verdict with its evidence (table, JSON, JUnit, Markdown) and
// can roll a Kubernetes Deployment back. It owns the gate's I/O; the
// statistics stay in internal/regress.
package gate
