// Unit tests of the deployments page's helpers: `npm test` (bundles src/ first).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as d from "../.test-build/pages/deployments.mjs";

const event = {
  id: "7",
  service: "checkout",
  version: "v2",
  previous_version: "v1",
  shape: "rolling",
  first_seen: "2026-12-04T10:00:00Z",
  state: "decided",
  verdict: "regression",
};

test("ages read as people say them", () => {
  const now = 1_000_000;
  assert.equal(d.age(now - 10, now), "just now");
  assert.equal(d.age(now - 300, now), "5m ago");
  assert.equal(d.age(now - 3 * 3600, now), "3h ago");
  assert.equal(d.age(now - 5 * 86400, now), "5d ago");
  assert.equal(d.age(now + 60, now), "just now"); // a clock ahead is no negative age
  assert.equal(d.age(NaN, now), "");
});

test("RFC 3339 times become unix seconds, anything else NaN", () => {
  assert.equal(d.unixOf("2026-12-04T10:00:00Z"), 1796378400);
  assert.equal(d.unixOf("2026-12-04T10:00:00.5Z"), 1796378400.5);
  assert.ok(Number.isNaN(d.unixOf("yesterday")));
  assert.ok(Number.isNaN(d.unixOf(undefined)));
});

test("an arm's version comes out of its matchers, escapes undone", () => {
  assert.equal(d.armVersion({ matchers: 'service_version="v2"' }), "v2");
  assert.equal(d.armVersion({ matchers: 'service_version = "a\\"b"' }), 'a"b');
  assert.equal(d.armVersion({ matchers: 'deployment_environment="prod"' }), "");
  assert.equal(d.armVersion(undefined), "");
});

test("a before/after verdict opens Compare on its two windows and versions", () => {
  const p = d.compareParams({
    ...event,
    compared: {
      baseline: { matchers: 'service_name="checkout", service_version="v1"', start: "2026-12-04T09:55:00Z", end: "2026-12-04T10:00:00Z" },
      candidate: { matchers: 'service_name="checkout", service_version="v2"', start: "2026-12-04T10:05:00.250Z" },
    },
    decided_at: "2026-12-04T10:10:00Z",
  });
  assert.deepEqual(p, { service: "checkout", base: "v1", cand: "v2", mode: "ranges", bstart: "1796378100", bend: "1796378400", cstart: "1796378700", cend: "1796379000" });
});

test("a before/after comparison still watched ends now", () => {
  const compared = { baseline: { matchers: 'service_version="v1"', start: "2026-12-04T09:55:00Z", end: "2026-12-04T10:00:00Z" }, candidate: { matchers: 'service_version="v2"', start: "2026-12-04T10:05:00Z" } };
  assert.equal(d.compareParams({ ...event, state: "watching", compared }, 1796378800).cend, "1796378800");
});

test("a canary verdict opens Compare on its two versions in one window", () => {
  const compared = { baseline: { matchers: 'service_version="v1"' }, candidate: { matchers: 'service_version="v2"' } };
  assert.deepEqual(d.compareParams({ ...event, shape: "canary", compared }), { service: "checkout", base: "v1", cand: "v2" });
  assert.deepEqual(d.compareParams(event), { service: "checkout", base: "v1", cand: "v2" });
});
