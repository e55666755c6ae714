// Package loadgen generates synthetic OpenTelemetry traces from a scenario:
// services with versions and traffic shares, operations with latency
// distributions and error rates, downstream calls (to other services and
// databases), and changes injected at a point in time (a slower database
// call in a canary). It is `spanwatch loadgen` and the traffic of
// `spanwatch demo`. It owns the scenario format and the generator; it sends
// spans through an sdktrace.SpanExporter it is given and knows nothing of
// spanwatch's server.
package loadgen
