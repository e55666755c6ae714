import { h } from "../dom";

/** The "no traffic yet" state: how to send spans to spanwatch. */
export function noTraffic(what = "No span metrics yet"): HTMLElement {
  const host = location.hostname || "localhost";
  return h(
    "section",
    { class: "empty", "aria-labelledby": "empty-h" },
    h("h2", { id: "empty-h" }, what),
    h(
      "p",
      {},
      "spanwatch turns OpenTelemetry traces into request rate, errors and latency per service. Point an OpenTelemetry SDK (or a Collector's OTLP exporter) at spanwatch's OTLP receiver and traffic shows up here within a flush interval (15 s):",
    ),
    h(
      "pre",
      {},
      `OTEL_EXPORTER_OTLP_ENDPOINT=http://${host}:4317   # OTLP/gRPC
OTEL_EXPORTER_OTLP_PROTOCOL=grpc
OTEL_SERVICE_NAME=checkout
OTEL_RESOURCE_ATTRIBUTES=service.version=v1.2.3   # versions are told apart by this`,
    ),
    h("p", {}, "OTLP/HTTP works too: ", h("code", {}, `http://${host}:4318/v1/traces`), " (protobuf or JSON). To check the pipe by hand:"),
    h(
      "pre",
      {},
      `now=$(date +%s%N)
curl -s http://${host}:4318/v1/traces -H 'Content-Type: application/json' -d '{"resourceSpans":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"hello"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",
  "spanId":"eee19b7ec3c1b174","name":"GET /hello","kind":2,"startTimeUnixNano":"'$((now-42000000))'","endTimeUnixNano":"'$now'"}]}]}]}'`,
    ),
    h("p", { class: "muted" }, "Already sending? Check the time range above, and spanwatch's own metrics at ", h("a", { href: "/metrics" }, "/metrics"), " (spanwatch_ingest_*)."),
  );
}
