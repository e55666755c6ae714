// Package rules evaluates Prometheus rule files and spanwatch's built-in
// service-performance pack with Prometheus's rules manager, through a query
// function that reads the embedded TSDB or a remote Prometheus-compatible
// store, and delivers alerts to Alertmanager (Prometheus's notifier, API
// v2) and to webhooks (the Alertmanager webhook payload). It owns loading,
// validation and reloading of rule files; a file that does not load keeps
// the previous rules.
package rules
