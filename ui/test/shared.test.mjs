// Unit tests of the helpers the pages share: `npm test` (bundles src/ first).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as s from "../.test-build/pages/shared.mjs";
import { detectNaming } from "../.test-build/promql.mjs";

test("versions sort naturally, case aside", () => {
  assert.deepEqual(["v1.10", "v1.9", "v2", "V1.2", "v1.2.1"].sort(s.versionSort), ["V1.2", "v1.2.1", "v1.9", "v1.10", "v2"]);
  assert.equal(s.versionSort("v1", "V1"), 0);
});

test("series keys join the label values, absent ones empty", () => {
  assert.equal(s.keyOf({ span_name: "GET /", span_kind: "SPAN_KIND_SERVER" }, ["span_name", "span_kind"]), "GET /\u0000SPAN_KIND_SERVER");
  assert.equal(s.keyOf({ span_name: "GET /" }, ["span_kind", "span_name"]), "\u0000GET /");
  assert.equal(s.keyOf({}, []), "");
});

test("span-kind choices: the default first, every value unique", () => {
  assert.deepEqual(s.KIND_CHOICES[0], ["entry", "server + consumer"]);
  const values = s.KIND_CHOICES.map(([v]) => v);
  assert.equal(new Set(values).size, values.length);
  assert.ok(values.includes("all"));
});

/** Replaces fetch: answers each instant query from reply(query), records the requests. */
function fakeQueries(reply) {
  const calls = [];
  globalThis.fetch = async (url, init) => {
    const q = new URLSearchParams(String(init.body)).get("query");
    calls.push({ url: String(url), query: q, signal: init.signal });
    const result = reply(q).map(([metric, v]) => ({ metric, value: [0, v] }));
    return new Response(JSON.stringify({ status: "success", data: { resultType: "vector", result } }));
  };
  return calls;
}

test("quantileBy: native histograms where they have a value, classic buckets otherwise", async () => {
  const n = detectNaming(["traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds", "traces_span_metrics_duration_milliseconds_bucket"]);
  const calls = fakeQueries((q) =>
    q.includes("_bucket")
      ? [[{ service_name: "a" }, "10"], [{ service_name: "b" }, "20"], [{ service_name: "c" }, "NaN"]]
      : [[{ service_name: "a" }, "11"], [{ service_name: "b" }, "NaN"]],
  );
  const ctx = { signal: new AbortController().signal };
  const got = await s.quantileBy(ctx, n, 0.95, [], "5m", ["service_name"], 1000);
  assert.deepEqual([...got].sort(), [["a", 11], ["b", 20]]);
  assert.equal(calls.length, 2);
  for (const c of calls) {
    assert.equal(c.url, "/api/v1/query");
    assert.equal(c.signal, ctx.signal, "each query carries the context's signal");
  }
});

test("quantileBy: one query when the naming has one kind of histogram", async () => {
  const n = detectNaming(["jaeger_spm_calls_total", "jaeger_spm_latency_bucket"]);
  const calls = fakeQueries(() => [[{ span_name: "GET /", span_kind: "SPAN_KIND_SERVER" }, "42"]]);
  const got = await s.quantileBy({}, n, 0.5, [], "1h", ["span_name", "span_kind"], 1000);
  assert.equal(calls.length, 1);
  assert.match(calls[0].query, /jaeger_spm_latency_bucket/);
  assert.equal(got.get(s.keyOf({ span_name: "GET /", span_kind: "SPAN_KIND_SERVER" }, ["span_name", "span_kind"])), 42);
});

test("quantileBy: an abort rejects it once, leaving no rejection unhandled", async () => {
  const n = detectNaming(["traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds", "traces_span_metrics_duration_milliseconds_bucket"]);
  let sent = 0;
  globalThis.fetch = (_, init) =>
    new Promise((_, reject) => {
      sent++;
      init.signal.addEventListener("abort", () => reject(init.signal.reason));
    });
  const unhandled = [];
  const onUnhandled = (e) => unhandled.push(e);
  process.on("unhandledRejection", onUnhandled);
  try {
    const ac = new AbortController();
    const p = s.quantileBy({ signal: ac.signal }, n, 0.95, [], "5m", ["service_name"], 1000);
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(sent, 2);
    ac.abort();
    await assert.rejects(p, { name: "AbortError" });
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});

test("recentRate: over the window, or over the part of it the data covers", () => {
  const now = 10_000;
  // Data over the whole 5m window: the increase over 300 s.
  assert.deepEqual(s.recentRate(6000, now - 400, now, 300, 5), { rate: 20, seconds: 300 });
  // A first sample one step into the window counts as the whole window.
  assert.deepEqual(s.recentRate(6000, now - 296, now, 300, 5), { rate: 20, seconds: 300 });
  // A service that started a minute ago: 1200 requests in 60 s is 20/s, not 4/s.
  assert.deepEqual(s.recentRate(1200, now - 60, now, 300, 5), { rate: 20, seconds: 60 });
  // Never less than one step; no first sample means the whole window.
  assert.deepEqual(s.recentRate(10, now, now, 300, 5), { rate: 2, seconds: 5 });
  assert.deepEqual(s.recentRate(600, NaN, now, 300, 5), { rate: 2, seconds: 300 });
  assert.ok(Number.isNaN(s.recentRate(NaN, now - 60, now, 300, 5).rate));
});

test("firstSeenQuery: the first sample's time per group in the window", () => {
  assert.equal(s.firstSeenQuery(`calls_total{span_kind="SPAN_KIND_SERVER"}`, "5m", 5, ["service_name"]),
    `min by (service_name) (min_over_time(timestamp(calls_total{span_kind="SPAN_KIND_SERVER"})[5m:5s]))`);
});
