// Unit tests of the router with fake pages, and of a page's API calls being
// aborted when it is left, with a fake fetch: `npm test` (bundles src/ first).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRouter } from "../.test-build/router.mjs";
import * as api from "../.test-build/api.mjs";

/** A router over pages (path → page); records what it shows. */
function fakeRouter(pages) {
  const shown = { errors: [], warnings: [], failed: [], begun: [] };
  const at = { path: "/" };
  const main = { name: "main" };
  const router = createRouter({
    path: () => at.path,
    resolve: (p) => {
      const page = pages[p];
      if (!page) throw new Error("no page at " + p);
      return page;
    },
    begin: (p) => {
      shown.begun.push(p);
      return main;
    },
    showError: (e) => shown.errors.push(e),
    showWarning: (w) => shown.warnings.push(w),
    showFailed: (el, retry) => shown.failed.push({ el, retry }),
  });
  const go = (p) => {
    at.path = p;
    return router.route();
  };
  return { router, shown, main, go };
}

/** A promise with its resolve and reject. */
function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test("a page renders into the element begin returns, with a live context", async () => {
  let got;
  const { shown, main, go } = fakeRouter({ "/": (el, ctx) => void (got = { el, ctx }) });
  await go("/");
  assert.deepEqual(shown.begun, ["/"]);
  assert.equal(got.el, main);
  assert.equal(got.ctx.signal.aborted, false);
  assert.deepEqual(shown.errors, []);
});

test("navigating aborts the page shown and runs its cleanup, once", async () => {
  const ctxs = [];
  let cleanups = 0;
  const { go } = fakeRouter({
    "/a": (_, ctx) => {
      ctxs.push(ctx);
      return () => cleanups++;
    },
    "/b": (_, ctx) => void ctxs.push(ctx),
  });
  await go("/a");
  assert.equal(cleanups, 0);
  await go("/b");
  assert.equal(ctxs[0].signal.aborted, true);
  assert.equal(cleanups, 1);
  assert.equal(ctxs[1].signal.aborted, false);
  await go("/a");
  assert.equal(cleanups, 1, "the first cleanup ran once; /b had none");
  assert.equal(ctxs[1].signal.aborted, true);
});

test("a page left while it renders: cleaned up when it returns, its errors and warnings dropped", async () => {
  const slow = deferred();
  let ctxA;
  let cleaned = 0;
  const { shown, go } = fakeRouter({
    "/a": async (_, ctx) => {
      ctxA = ctx;
      await slow.promise;
      ctx.showError(new Error("late error"));
      ctx.onWarning("late warning", "request rate");
      return () => cleaned++;
    },
    "/b": () => {},
  });
  const a = go("/a");
  await go("/b");
  assert.equal(ctxA.signal.aborted, true);
  slow.resolve();
  await a;
  assert.equal(cleaned, 1, "the cleanup a left page returns runs at once");
  assert.deepEqual(shown.errors, []);
  assert.deepEqual(shown.warnings, []);
});

test("a left page that fails is not shown as failed", async () => {
  const slow = deferred();
  const { shown, go } = fakeRouter({ "/a": () => slow.promise, "/b": () => {} });
  const a = go("/a");
  await go("/b");
  slow.reject(new Error("after leaving"));
  await a;
  assert.deepEqual(shown.errors, []);
  assert.deepEqual(shown.failed, []);
});

test("a failing page shows its error and a retry that renders it again", async () => {
  let tries = 0;
  const boom = new Error("boom");
  const { shown, main, go } = fakeRouter({
    "/": () => {
      tries++;
      if (tries === 1) throw boom;
    },
  });
  await go("/");
  assert.deepEqual(shown.errors, [boom]);
  assert.equal(shown.failed.length, 1);
  assert.equal(shown.failed[0].el, main);
  await shown.failed[0].retry();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(tries, 2);
  assert.deepEqual(shown.begun, ["/", "/"]);
  assert.equal(shown.failed.length, 1);
});

test("a path without a page shows the error resolve throws", async () => {
  const { shown, go } = fakeRouter({});
  await go("/nowhere");
  assert.equal(shown.errors.length, 1);
  assert.match(shown.errors[0].message, /no page at \/nowhere/);
  assert.equal(shown.failed.length, 1);
});

test("rerender renders the current path again; a left page's rerender does nothing", async () => {
  const ctxs = [];
  const { shown, go } = fakeRouter({ "/a": (_, ctx) => void ctxs.push(ctx), "/b": (_, ctx) => void ctxs.push(ctx) });
  await go("/a");
  ctxs[0].rerender();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(shown.begun, ["/a", "/a"]);
  assert.equal(ctxs[0].signal.aborted, true);
  assert.equal(ctxs[1].signal.aborted, false);
  await go("/b");
  ctxs[1].rerender();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(shown.begun, ["/a", "/a", "/b"]);
});

test("the context shows errors and warnings while its page is shown", async () => {
  let ctx;
  const { shown, go } = fakeRouter({ "/": (_, c) => void (ctx = c) });
  await go("/");
  const e = new Error("x");
  ctx.showError(e);
  ctx.onWarning("PromQL info: metric might not be a counter", "request rate");
  assert.deepEqual(shown.errors, [e]);
  assert.deepEqual(shown.warnings, ["request rate: PromQL info: metric might not be a counter"]);
});

/**
 * Replaces fetch: each request waits until release(reply) or its signal
 * aborts (as fetch does: rejects with the signal's reason). Returns the
 * pending requests.
 */
function fakeFetch({ honourSignal = true } = {}) {
  const pending = [];
  globalThis.fetch = (url, init) =>
    new Promise((resolve, reject) => {
      const req = { url: String(url), init, release: (data, warnings) => resolve(new Response(JSON.stringify({ status: "success", data, warnings }))) };
      pending.push(req);
      if (!honourSignal) return;
      init?.signal?.throwIfAborted?.();
      init?.signal?.addEventListener("abort", () => reject(init.signal.reason));
    });
  return pending;
}

const vector = (v) => ({ resultType: "vector", result: [{ metric: {}, value: [0, String(v)] }] });
const tick = () => new Promise((r) => setTimeout(r, 0));

test("leaving a page aborts its in-flight requests, and that shows as no error", async () => {
  const pending = fakeFetch();
  let settled;
  const { shown, go } = fakeRouter({
    "/a": async (_, ctx) => {
      const p = api.query(ctx, "up", 0, "up");
      p.catch((e) => (settled = e));
      await p;
      assert.fail("the query resolved");
    },
    "/b": () => {},
  });
  const a = go("/a");
  await tick();
  assert.equal(pending.length, 1);
  assert.equal(pending[0].init.signal.aborted, false, "the request carries the page's signal");
  await go("/b");
  await a;
  assert.equal(pending[0].init.signal.aborted, true);
  assert.equal(settled?.name, "AbortError");
  assert.ok(!(settled instanceof api.APIError), "an aborted request is no API error");
  assert.deepEqual(shown.errors, []);
  assert.deepEqual(shown.failed, []);
});

test("an answer that arrives after the abort is dropped, warnings too", async () => {
  const pending = fakeFetch({ honourSignal: false });
  const ac = new AbortController();
  const warnings = [];
  const p = api.query({ signal: ac.signal, onWarning: (w) => warnings.push(w) }, "up", 0);
  await tick();
  ac.abort();
  pending[0].release(vector(1), ["late"]);
  await assert.rejects(p, { name: "AbortError" });
  assert.deepEqual(warnings, []);
});

test("a request whose signal is already aborted is not sent", async () => {
  const pending = fakeFetch();
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(api.labelValues({ signal: ac.signal }, "service_name", []), { name: "AbortError" });
  await assert.rejects(api.compare({ signal: ac.signal }, {}), { name: "AbortError" });
  assert.equal(pending.length, 0);
});

test("warnings go to the context with what the request was for", async () => {
  const pending = fakeFetch();
  const warnings = [];
  const p = api.query({ onWarning: (w, what) => warnings.push([w, what]) }, "rate(x[5m])", 0, "request rate");
  await tick();
  pending[0].release(vector(2), ["PromQL info: a"]);
  const v = await p;
  assert.equal(api.val(v[0]), 2);
  assert.deepEqual(warnings, [["PromQL info: a", "request rate"]]);
});

test("naming: a caller's abort rejects its own call only; the shared detection goes on", async () => {
  const fresh = await import("../.test-build/api.mjs?abort");
  const pending = fakeFetch();
  const ac = new AbortController();
  const left = fresh.naming({ signal: ac.signal });
  const stays = fresh.naming();
  await tick();
  assert.equal(pending.length, 1, "one request for both");
  ac.abort();
  await assert.rejects(left, { name: "AbortError" });
  assert.equal(pending[0].init.signal, undefined, "the shared request has no caller's signal");
  pending[0].release(["traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds_bucket"]);
  const n = await stays;
  assert.equal(n?.calls, "traces_span_metrics_calls_total");
  // The next page gets the cached detection, and an aborted caller still gets its rejection.
  assert.equal(await fresh.naming({ signal: new AbortController().signal }), n);
  await assert.rejects(fresh.naming({ signal: ac.signal }), { name: "AbortError" });
});
