// Helpers more than one page uses: span-kind choices, version order, series
// keys and quantiles per group.

import { query, RequestContext, val } from "../api";
import { Matcher, Naming, quantileQuery } from "../promql";

/** The span-kind filter's choices, [value, label]; "entry" is the default. */
export const KIND_CHOICES: [string, string][] = [
  ["entry", "server + consumer"],
  ["server", "server"],
  ["consumer", "consumer"],
  ["client", "client"],
  ["producer", "producer"],
  ["internal", "internal"],
  ["all", "all kinds"],
];

/** Natural order for versions: v1.10 after v1.9. */
export function versionSort(a: string, b: string): number {
  return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
}

/** Key of a sample by some of its labels. */
export function keyOf(metric: Record<string, string>, by: string[]): string {
  return by.map((l) => metric[l] ?? "").join("\u0000");
}

/** A quantile per group: native histogram where it has data, classic buckets otherwise. */
export async function quantileBy(ctx: RequestContext, n: Naming, q: number, m: Matcher[], win: string, by: string[], time: number): Promise<Map<string, number>> {
  const classic = n.classic ? query(ctx, quantileQuery(n, q, m, win, by, true), time, `P${q * 100} (classic buckets)`) : Promise.resolve([]);
  const native = n.native ? query(ctx, quantileQuery(n, q, m, win, by), time, `P${q * 100} (native histograms)`) : Promise.resolve([]);
  const out = new Map<string, number>();
  for (const s of (await Promise.all([classic, native])).flat()) {
    const v = val(s);
    if (Number.isFinite(v)) out.set(keyOf(s.metric, by), v);
  }
  return out;
}

/**
 * A recent request rate: the increase over the last `windowSec` seconds
 * divided by the part of that window the data covers, from its first
 * sample there (`firstSeen`, Unix seconds) to `now`, so that a service that
 * started a minute ago shows the rate it serves, not a fraction of it.
 * `seconds` is that part: `windowSec` when the data covers the window to
 * within one step of the first-sample query (`step`).
 */
export function recentRate(increase: number, firstSeen: number, now: number, windowSec: number, step: number): { rate: number; seconds: number } {
  let seconds = windowSec;
  if (Number.isFinite(firstSeen) && now - firstSeen < windowSec - step) seconds = Math.max(step, now - firstSeen);
  return { rate: increase / seconds, seconds };
}

/** The time of the first sample of `sel` in the last `win` per group, found every `step` seconds. */
export function firstSeenQuery(sel: string, win: string, step: number, by: string[]): string {
  return `min by (${by.join(", ")}) (min_over_time(timestamp(${sel})[${win}:${step}s]))`;
}
