// The same-origin Prometheus API: /api/v1/{query,query_range,label,…} and POST /api/v1/compare.

import { detectNaming, NativeHistogram, Naming, sampleValue } from "./promql";

/** An error from the API (or the network), shown in the error banner. */
export class APIError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly errorType: string,
    readonly what: string,
  ) {
    super(message);
  }
}

interface Envelope<T> {
  status: "success" | "error";
  data?: T;
  errorType?: string;
  error?: string;
  warnings?: string[];
}

/** Listeners for warnings the API returns alongside data. */
export const warningListeners: ((w: string, what: string) => void)[] = [];

async function call<T>(path: string, params: URLSearchParams | null, what: string, init?: RequestInit): Promise<T> {
  let resp: Response;
  const url = params ? `${path}?${params}` : path;
  try {
    resp = await fetch(url, { headers: { Accept: "application/json" }, ...init });
  } catch (e) {
    throw new APIError(`cannot reach spanwatch (${(e as Error).message})`, 0, "network", what);
  }
  const text = await resp.text();
  let env: Envelope<T>;
  try {
    env = JSON.parse(text) as Envelope<T>;
  } catch {
    const snippet = text.trim().slice(0, 200) || resp.statusText;
    throw new APIError(`HTTP ${resp.status}: ${snippet}`, resp.status, "http", what);
  }
  if (env.status !== "success") {
    throw new APIError(env.error ?? `HTTP ${resp.status}`, resp.status, env.errorType ?? "unknown", what);
  }
  for (const w of env.warnings ?? []) warningListeners.forEach((l) => l(w, what));
  return env.data as T;
}

export type Labels = Record<string, string>;
export interface VectorSample {
  metric: Labels;
  value?: [number, string];
  histogram?: [number, NativeHistogram];
}
export interface MatrixSeries {
  metric: Labels;
  values?: [number, string][];
  histograms?: [number, NativeHistogram][];
}

/** An instant query at `time` (unix seconds). */
export async function query(q: string, time: number, what = q): Promise<VectorSample[]> {
  const p = new URLSearchParams({ query: q, time: String(time) });
  const d = await call<{ resultType: string; result: VectorSample[] }>("/api/v1/query", null, what, {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/x-www-form-urlencoded" },
    body: p,
  });
  return d.resultType === "vector" ? d.result : [];
}

/** A range query. */
export async function queryRange(q: string, start: number, end: number, step: number, what = q): Promise<MatrixSeries[]> {
  const p = new URLSearchParams({ query: q, start: String(start), end: String(end), step: String(step) });
  const d = await call<{ resultType: string; result: MatrixSeries[] }>("/api/v1/query_range", null, what, {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/x-www-form-urlencoded" },
    body: p,
  });
  return d.result;
}

/** Values of a label, optionally restricted by series selectors and a time range. */
export async function labelValues(name: string, match: string[], start?: number, end?: number, what?: string): Promise<string[]> {
  const p = new URLSearchParams();
  for (const m of match) p.append("match[]", m);
  if (start !== undefined) p.set("start", String(start));
  if (end !== undefined) p.set("end", String(end));
  return call<string[]>(`/api/v1/label/${encodeURIComponent(name)}/values`, p, what ?? `values of ${name}`);
}

/** POST /api/v1/compare. */
export async function compare<T>(body: unknown): Promise<T> {
  return call<T>("/api/v1/compare", null, "compare", {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

let namingPromise: Promise<Naming | null> | null = null;

/**
 * Detects the naming from /api/v1/label/__name__/values. A detection is kept
 * for the page's lifetime; "no span metrics" (null) and errors are not, so
 * the next page render (refresh, navigation) asks again and the page shows
 * the data as soon as the first flush has written it. Calls while a request
 * is in flight share it.
 */
export function naming(): Promise<Naming | null> {
  if (!namingPromise) {
    const p = labelValues("__name__", [], undefined, undefined, "metric names").then(detectNaming);
    namingPromise = p;
    const forget = () => {
      if (namingPromise === p) namingPromise = null;
    };
    p.then((n) => {
      if (!n) forget();
    }, forget);
  }
  return namingPromise;
}

/** The scalar value of a vector sample (NaN when absent). */
export function val(s: VectorSample | undefined): number {
  return s?.value ? sampleValue(s.value[1]) : NaN;
}

/** Indexes a vector by one label. */
export function byLabel(v: VectorSample[], label: string): Map<string, VectorSample> {
  return new Map(v.map((s) => [s.metric[label] ?? "", s]));
}
