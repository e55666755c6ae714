// Package dashboards builds the Grafana dashboard that spanwatch ships for
// its span metrics, with the Grafana Foundation SDK, for the metric and label
// names of one naming configuration (spanmetrics.Names).
//
// It owns the dashboard's panels, variables and PromQL expressions. It does
// no I/O and reads no configuration file: callers pass the names.
package dashboards
