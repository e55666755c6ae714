// Unit tests of the API client with a fake fetch: `npm test` (bundles src/ first).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as api from "../.test-build/api.mjs";

const OTEL = ["traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds", "traces_span_metrics_duration_milliseconds_bucket"];

/** Replaces fetch: each request to /api/v1/label/__name__/values gets the next reply (an array of names, or an Error to throw). */
function fakeNames(replies) {
  const calls = [];
  globalThis.fetch = async (url) => {
    calls.push(String(url));
    assert.match(String(url), /^\/api\/v1\/label\/__name__\/values/);
    const r = replies.shift();
    if (r === undefined) throw new Error("unexpected request " + url);
    if (r instanceof Error) throw r;
    return new Response(JSON.stringify({ status: "success", data: r }), { headers: { "Content-Type": "application/json" } });
  };
  return calls;
}

// naming() keeps its cache for the module's lifetime, so the steps run in
// order within one test, like a page that stays open.
test("naming: an empty start is detected again, a detection is cached", async () => {
  const calls = fakeNames([[], ["up"], new Error("connection refused"), OTEL]);

  // Before the first flush: no span metrics.
  assert.equal(await api.naming(), null);
  assert.equal(calls.length, 1);
  // A refresh asks again (the null is not cached), still nothing.
  assert.equal(await api.naming(), null);
  assert.equal(calls.length, 2);
  // An error is not cached either.
  await assert.rejects(api.naming(), (e) => e instanceof api.APIError && e.errorType === "network");
  assert.equal(calls.length, 3);
  // The metrics have arrived: the next render sees them.
  const n = await api.naming();
  assert.equal(n?.calls, "traces_span_metrics_calls_total");
  assert.equal(n?.native, true);
  assert.equal(calls.length, 4);
  // From then on the detection is cached.
  assert.equal(await api.naming(), n);
  assert.equal(await api.naming(), n);
  assert.equal(calls.length, 4);
});

test("naming: concurrent calls share one request", async () => {
  // The module's cache holds the detection of the test above; load a fresh copy.
  const fresh = await import("../.test-build/api.mjs?fresh");
  const calls = fakeNames([[]]);
  const [a, b, c] = await Promise.all([fresh.naming(), fresh.naming(), fresh.naming()]);
  assert.deepEqual([a, b, c], [null, null, null]);
  assert.equal(calls.length, 1);
});
