// Pure PromQL helpers: no DOM, no fetch (tested with node --test).

/** Escapes a label value for a PromQL double-quoted string literal. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Escapes a string for use inside a PromQL regular expression literal (RE2). */
export function escapeRegex(v: string): string {
  return v.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export type Matcher = [name: string, op: "=" | "!=" | "=~" | "!~", value: string];

/** Renders a selector: name{a="b", …} with every value escaped. */
export function selector(metric: string, matchers: Matcher[]): string {
  const parts = matchers.map(([n, op, v]) => `${n}${op}"${escapeLabelValue(v)}"`);
  return parts.length ? `${metric}{${parts.join(", ")}}` : metric;
}

/** The span-metric names one backend holds (otel or legacy naming, optional namespace). */
export interface Naming {
  kind: "otel" | "legacy";
  /** counter of calls, e.g. traces_span_metrics_calls_total */
  calls: string;
  /** histogram base name; classic buckets are duration + "_bucket" */
  duration: string;
  /**
   * Factor from the histogram's unit to milliseconds: 1 for
   * …_duration_milliseconds and legacy latency, 1000 for …_duration_seconds.
   * Quantile queries apply it (quantileQuery), bucket bounds go through msBound.
   */
  toMs: number;
  /** span name label: span_name (otel) or operation (legacy) */
  op: string;
  /** whether a native histogram series named `duration` exists */
  native: boolean;
  /** whether classic buckets exist */
  classic: boolean;
}

const OTEL_CALLS = "traces_span_metrics_calls_total";

/**
 * Finds the naming from the values of __name__: the otel names
 * ([ns_]traces_span_metrics_*) first, then the legacy ones
 * ([ns_]calls_total with [ns_]latency_bucket). Null when there are none.
 * The otel histogram is …_duration_milliseconds, or …_duration_seconds
 * (spanmetrics.histogram.unit: s) when only that one exists (as classic
 * buckets or a native histogram).
 */
export function detectNaming(names: string[]): Naming | null {
  const set = new Set(names);
  const sorted = [...names].sort();
  for (const n of sorted) {
    if (n === OTEL_CALLS || n.endsWith("_" + OTEL_CALLS)) {
      const prefix = n.slice(0, n.length - OTEL_CALLS.length);
      const exists = (d: string) => set.has(d) || set.has(d + "_bucket");
      const ms = prefix + "traces_span_metrics_duration_milliseconds";
      const sec = prefix + "traces_span_metrics_duration_seconds";
      const [duration, toMs] = !exists(ms) && exists(sec) ? [sec, 1000] : [ms, 1];
      return { kind: "otel", calls: n, duration, toMs, op: "span_name", native: set.has(duration), classic: set.has(duration + "_bucket") };
    }
  }
  for (const n of sorted) {
    if (n === "calls_total" || n.endsWith("_calls_total")) {
      const prefix = n.slice(0, n.length - "calls_total".length);
      const duration = prefix + "latency";
      if (!set.has(duration + "_bucket") && !set.has(duration)) continue;
      return { kind: "legacy", calls: n, duration, toMs: 1, op: "operation", native: set.has(duration), classic: set.has(duration + "_bucket") };
    }
  }
  return null;
}

export const SPAN_KINDS = ["server", "client", "consumer", "producer", "internal", "unspecified"] as const;

/** Matcher for a span-kind choice: "entry" (server + consumer), one kind, or "all". */
export function kindMatcher(kind: string): Matcher[] {
  if (kind === "all" || kind === "") return [];
  if (kind === "entry") return [["span_kind", "=~", "SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"]];
  return [["span_kind", "=", "SPAN_KIND_" + kind.toUpperCase()]];
}

/** Prometheus duration for a number of seconds (integer seconds, largest units). */
export function promDuration(sec: number): string {
  let s = Math.max(1, Math.round(sec));
  const units: [string, number][] = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
  let out = "";
  for (const [u, n] of units) {
    if (s >= n) {
      out += Math.floor(s / n) + u;
      s %= n;
    }
  }
  return out;
}

/** Parses "15m", "1h", "7d", "1h30m" into seconds; NaN when invalid. */
export function parseDuration(d: string): number {
  const m = /^((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?$/.exec(d.trim());
  if (!m || d.trim() === "") return NaN;
  const n = (i: number) => (m[i] ? Number(m[i]) : 0);
  return n(2) * 604800 + n(4) * 86400 + n(6) * 3600 + n(8) * 60 + n(10);
}

/** The flush interval of spanwatch, the resolution of its series (seconds). */
export const RESOLUTION = 15;

/** A step giving about `points` points over `rangeSec`, at least the resolution, rounded to a nice value. */
export function stepFor(rangeSec: number, points = 240): number {
  const raw = Math.max(RESOLUTION, rangeSec / points);
  const nice = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  return nice.find((n) => n >= raw) ?? Math.ceil(raw / 86400) * 86400;
}

/** The rate window for a range query at `step`: like Grafana's $__rate_interval. */
export function rateWindow(step: number): number {
  return Math.max(step + RESOLUTION, 4 * RESOLUTION);
}

/** Sums `rate(...)` by labels. */
export function sumRate(sel: string, win: string, by: string[]): string {
  return `sum by (${by.join(", ")}) (rate(${sel}[${win}]))`;
}

/**
 * A quantile query over the native histogram when present, else classic
 * buckets, in milliseconds whatever the histogram's unit.
 */
export function quantileQuery(n: Naming, q: number, matchers: Matcher[], win: string, by: string[], forceClassic = false): string {
  const e =
    n.native && !forceClassic
      ? `histogram_quantile(${q}, ${sumRate(selector(n.duration, matchers), win, by)})`
      : `histogram_quantile(${q}, ${sumRate(selector(n.duration + "_bucket", matchers), win, [...by, "le"])})`;
  return n.toMs === 1 ? e : `${e} * ${n.toMs}`;
}

/** A note for pages when the histogram is not in milliseconds ("" when it is). */
export function unitNote(n: Naming): string {
  return n.toMs === 1 ? "" : ` (${n.duration}: seconds, shown in milliseconds)`;
}

/** A classic bucket's upper bound (its `le` label) in milliseconds; NaN when invalid. */
export function msBound(n: Naming, le: string | undefined): number {
  return le === undefined ? NaN : sampleValue(le) * n.toMs;
}

/** Error ratio: errors / calls, by labels. */
export function errorRatioQuery(n: Naming, matchers: Matcher[], win: string, by: string[]): string {
  const errs = sumRate(selector(n.calls, [...matchers, ["status_code", "=", "STATUS_CODE_ERROR"]]), win, by);
  const all = sumRate(selector(n.calls, matchers), win, by);
  // "or … * 0" keeps series that had calls but no errors at 0 instead of dropping them.
  return `(${errs} or ${all} * 0) / ${all}`;
}

/** Parses a sample value as Prometheus encodes it ("NaN", "+Inf", "1.5e-7"). */
export function sampleValue(v: string): number {
  if (v === "+Inf") return Infinity;
  if (v === "-Inf") return -Infinity;
  return Number(v);
}

/** A native histogram as the API encodes it. */
export interface NativeHistogram {
  count: string;
  sum: string;
  buckets?: [number, string, string, string][];
}

/** Converts native buckets into ascending [upper bound, count] pairs (counts per bucket, not cumulative). */
export function nativeBuckets(h: NativeHistogram): [number, number][] {
  return (h.buckets ?? [])
    .map(([, , upper, count]) => [sampleValue(upper), sampleValue(count)] as [number, number])
    .sort((a, b) => a[0] - b[0]);
}

/** Turns cumulative classic buckets [le, cumulative] into per-bucket counts, sorted by le. */
export function decumulate(buckets: [number, number][]): [number, number][] {
  const s = [...buckets].sort((a, b) => a[0] - b[0]);
  let prev = 0;
  return s.map(([le, c]) => {
    const d = Math.max(0, c - prev);
    prev = Math.max(prev, c);
    return [le, d];
  });
}

/** Formats a number with about three significant digits. */
export function fmtNum(v: number | null | undefined, unit = ""): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
  const a = Math.abs(v);
  let s: string;
  if (a === 0) s = "0";
  else if (a >= 1e6) s = (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  else if (a >= 1e4) s = (v / 1e3).toFixed(a >= 1e5 ? 0 : 1) + "k";
  else if (a >= 100) s = v.toFixed(0);
  else if (a >= 10) s = v.toFixed(1);
  else if (a >= 0.01) s = v.toFixed(2);
  else s = v.toPrecision(2);
  return unit ? s + " " + unit : s;
}

/** Formats milliseconds as ms or s. */
export function fmtMs(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v >= 1000) return fmtNum(v / 1000) + " s";
  return fmtNum(v) + " ms";
}

/** Formats a ratio as a percentage. */
export function fmtPct(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const p = v * 100;
  if (p === 0) return "0 %";
  if (p < 0.01) return "<0.01 %";
  return (p >= 10 ? p.toFixed(1) : p.toFixed(2)) + " %";
}
