// Unit tests of the pure PromQL helpers: `npm test` (bundles src/ first).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as p from "../.test-build/promql.mjs";

test("label values are escaped for PromQL string literals", () => {
  assert.equal(p.escapeLabelValue(`a"b\\c`), `a\\"b\\\\c`);
  assert.equal(p.selector("calls_total", [["service_name", "=", `x"} or vector(1) #`]]), `calls_total{service_name="x\\"} or vector(1) #"}`);
  assert.equal(p.selector("m", []), "m");
});

test("naming is detected from metric names", () => {
  const otel = p.detectNaming(["traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds", "traces_span_metrics_duration_milliseconds_bucket"]);
  assert.deepEqual(otel, {
    kind: "otel", calls: "traces_span_metrics_calls_total", duration: "traces_span_metrics_duration_milliseconds", toMs: 1,
    op: "span_name", native: true, classic: true,
  });
  const ns = p.detectNaming(["up", "jaeger_spm_traces_span_metrics_calls_total", "jaeger_spm_traces_span_metrics_duration_milliseconds_bucket"]);
  assert.equal(ns.duration, "jaeger_spm_traces_span_metrics_duration_milliseconds");
  assert.equal(ns.native, false);
  const legacy = p.detectNaming(["jaeger_spm_calls_total", "jaeger_spm_latency_bucket", "http_calls_total"]);
  assert.deepEqual(legacy, { kind: "legacy", calls: "jaeger_spm_calls_total", duration: "jaeger_spm_latency", toMs: 1, op: "operation", native: false, classic: true });
  assert.equal(p.detectNaming(["calls_total", "latency_bucket"]).duration, "latency");
  assert.equal(p.detectNaming(["up", "http_calls_total"]), null);
});

test("a histogram in seconds is detected, milliseconds preferred", () => {
  // spanmetrics.histogram.unit: s, classic buckets only.
  const classic = p.detectNaming(["traces_span_metrics_calls_total", "traces_span_metrics_duration_seconds_bucket", "traces_span_metrics_duration_seconds_count", "traces_span_metrics_duration_seconds_sum"]);
  assert.deepEqual(classic, {
    kind: "otel", calls: "traces_span_metrics_calls_total", duration: "traces_span_metrics_duration_seconds", toMs: 1000,
    op: "span_name", native: false, classic: true,
  });
  // A native histogram only, under a namespace.
  const native = p.detectNaming(["ns_traces_span_metrics_calls_total", "ns_traces_span_metrics_duration_seconds"]);
  assert.equal(native.duration, "ns_traces_span_metrics_duration_seconds");
  assert.equal(native.toMs, 1000);
  assert.equal(native.native, true);
  assert.equal(native.classic, false);
  // Both units: milliseconds, classic or native.
  for (const ms of ["traces_span_metrics_duration_milliseconds_bucket", "traces_span_metrics_duration_milliseconds"]) {
    const both = p.detectNaming(["traces_span_metrics_calls_total", "traces_span_metrics_duration_seconds", "traces_span_metrics_duration_seconds_bucket", ms]);
    assert.equal(both.duration, "traces_span_metrics_duration_milliseconds", ms);
    assert.equal(both.toMs, 1, ms);
  }
  // Neither: the milliseconds names (the pages then show no latency).
  const none = p.detectNaming(["traces_span_metrics_calls_total"]);
  assert.equal(none.duration, "traces_span_metrics_duration_milliseconds");
  assert.equal(none.toMs, 1);
  assert.equal(none.classic || none.native, false);
});

test("quantiles and bucket bounds of a histogram in seconds are in milliseconds", () => {
  const n = p.detectNaming(["traces_span_metrics_calls_total", "traces_span_metrics_duration_seconds", "traces_span_metrics_duration_seconds_bucket"]);
  const m = [["service_name", "=", "checkout"]];
  assert.equal(p.quantileQuery(n, 0.95, m, "5m", ["service_name"]),
    `histogram_quantile(0.95, sum by (service_name) (rate(traces_span_metrics_duration_seconds{service_name="checkout"}[5m]))) * 1000`);
  assert.equal(p.quantileQuery(n, 0.5, m, "5m", [], true),
    `histogram_quantile(0.5, sum by (le) (rate(traces_span_metrics_duration_seconds_bucket{service_name="checkout"}[5m]))) * 1000`);
  assert.equal(p.msBound(n, "0.05"), 50);
  assert.equal(p.msBound(n, "+Inf"), Infinity);
  assert.ok(Number.isNaN(p.msBound(n, undefined)));
  assert.match(p.unitNote(n), /seconds, shown in milliseconds/);
  const ms = p.detectNaming(["traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds_bucket"]);
  assert.equal(p.msBound(ms, "50"), 50);
  assert.equal(p.unitNote(ms), "");
});

test("quantile queries prefer native histograms", () => {
  const n = p.detectNaming(["traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds", "traces_span_metrics_duration_milliseconds_bucket"]);
  const m = [["service_name", "=", "checkout"]];
  assert.equal(p.quantileQuery(n, 0.95, m, "5m", ["service_name"]),
    `histogram_quantile(0.95, sum by (service_name) (rate(traces_span_metrics_duration_milliseconds{service_name="checkout"}[5m])))`);
  assert.equal(p.quantileQuery(n, 0.95, m, "5m", ["service_name"], true),
    `histogram_quantile(0.95, sum by (service_name, le) (rate(traces_span_metrics_duration_milliseconds_bucket{service_name="checkout"}[5m])))`);
});

test("durations, steps and formatting", () => {
  assert.equal(p.parseDuration("1h30m"), 5400);
  assert.equal(p.parseDuration("7d"), 604800);
  assert.ok(Number.isNaN(p.parseDuration("1x")));
  assert.equal(p.promDuration(5400), "1h30m");
  assert.equal(p.stepFor(900), 15);
  assert.equal(p.stepFor(7 * 86400), 3600);
  assert.equal(p.rateWindow(15), 60);
  assert.deepEqual(p.decumulate([[10, 5], [2, 1], [Infinity, 7]]), [[2, 1], [10, 4], [Infinity, 2]]);
  assert.equal(p.fmtMs(1530), "1.53 s");
  assert.equal(p.fmtPct(0.0123), "1.23 %");
  assert.deepEqual(p.kindMatcher("server"), [["span_kind", "=", "SPAN_KIND_SERVER"]]);
});
