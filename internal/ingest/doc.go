// Package ingest receives OpenTelemetry traces over OTLP/gRPC and OTLP/HTTP
// (protobuf and JSON, gzip) and hands the request bytes to a Consumer. It
// owns transport concerns only: listening, TLS and mutual TLS, the bearer
// token or basic authentication check (before a request's body is read),
// request size limits applied after decompression, content types, and the
// mapping of failures to gRPC status codes and HTTP status codes with an
// OTLP Status body. It never decodes
// spans itself and never counts a request it rejects.
package ingest
