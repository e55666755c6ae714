// Everything a page shows is in the URL, so links can be shared:
// ?range=1h (15m, 1h, 6h, 24h, 7d) or ?from=<unix>&to=<unix> (custom), plus page parameters.

import { parseDuration } from "./promql";

export const RANGES = ["15m", "1h", "6h", "24h", "7d"] as const;
export const DEFAULT_RANGE = "1h";

export interface TimeRange {
  start: number; // unix seconds
  end: number;
  seconds: number;
  label: string; // "1h" or "custom"
  custom: boolean;
}

export function params(): URLSearchParams {
  return new URLSearchParams(location.search);
}

/** The time range of the URL, evaluated now. */
export function timeRange(p = params()): TimeRange {
  const from = Number(p.get("from"));
  const to = Number(p.get("to"));
  if (p.has("from") && p.has("to") && Number.isFinite(from) && Number.isFinite(to) && to > from) {
    return { start: from, end: to, seconds: to - from, label: "custom", custom: true };
  }
  let label = p.get("range") ?? DEFAULT_RANGE;
  let seconds = parseDuration(label);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    label = DEFAULT_RANGE;
    seconds = parseDuration(label);
  }
  const end = Math.floor(Date.now() / 1000);
  return { start: end - seconds, end, seconds, label, custom: false };
}

/** A URL for path with the current time range and the given page parameters. */
export function href(path: string, extra: Record<string, string | null | undefined> = {}): string {
  const cur = params();
  const p = new URLSearchParams();
  for (const k of ["range", "from", "to"]) {
    const v = cur.get(k);
    if (v !== null) p.set(k, v);
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === null || v === undefined || v === "") p.delete(k);
    else p.set(k, v);
  }
  const qs = p.toString();
  return qs ? `${path}?${qs}` : path;
}

/** Replaces page parameters in the current URL (no new history entry unless push). */
export function setParams(extra: Record<string, string | null | undefined>, push = false) {
  const p = params();
  for (const [k, v] of Object.entries(extra)) {
    if (v === null || v === undefined || v === "") p.delete(k);
    else p.set(k, v);
  }
  const qs = p.toString();
  const url = location.pathname + (qs ? `?${qs}` : "");
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}
