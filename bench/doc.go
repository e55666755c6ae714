// Package bench compares spanwatch's span-metrics aggregator with the
// OpenTelemetry Collector contrib spanmetrics connector, on identical
// serialized OTLP requests and the same connector configuration (the Jaeger
// SPM recipe's).
//
// It owns the request fixtures (workload.go), one adapter per implementation
// (spanwatch.go, connector.go) behind the Instance interface, and the
// measurements (measure.go): steady-state decode + aggregate per span, heap
// bytes per active series, and export cost per series. The Benchmark
// functions in bench_test.go and the table printed by cmd/compare both run
// these measurements.
//
// This is a separate Go module so that the product's go.mod never requires
// the Collector. It must not be imported by the product.
package bench
