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
  /** GET /api/v1/deployments: services whose spans carry no service.version. */
  services_without_version?: string[] | null;
  data?: T;
  errorType?: string;
  error?: string;
  warnings?: string[];
}

/**
 * What a request is made for: a signal that cancels it, and where the
 * warnings the API returns alongside data go. A page's context is one.
 */
export interface RequestContext {
  /** Aborts the request; the call then rejects with the signal's reason (an AbortError). */
  readonly signal?: AbortSignal;
  /** Receives each warning of the answer (a PromQL annotation) and what the request was for. */
  onWarning?(warning: string, what: string): void;
}

async function call<T>(ctx: RequestContext, path: string, params: URLSearchParams | null, what: string, init?: RequestInit): Promise<T> {
  return (await callEnvelope<T>(ctx, path, params, what, init)).data as T;
}

/** call, returning the whole envelope: for answers with fields beside data. */
async function callEnvelope<T>(ctx: RequestContext, path: string, params: URLSearchParams | null, what: string, init?: RequestInit): Promise<Envelope<T>> {
  const { signal } = ctx;
  signal?.throwIfAborted();
  let resp: Response;
  const url = params ? `${path}?${params}` : path;
  try {
    resp = await fetch(url, { headers: { Accept: "application/json" }, ...init, signal });
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    throw new APIError(`cannot reach spanwatch (${(e as Error).message})`, 0, "network", what);
  }
  const text = await resp.text();
  // An answer that arrives after the abort is dropped, errors and warnings too.
  signal?.throwIfAborted();
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
  for (const w of env.warnings ?? []) ctx.onWarning?.(w, what);
  return env;
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
export async function query(ctx: RequestContext, q: string, time: number, what = q): Promise<VectorSample[]> {
  const p = new URLSearchParams({ query: q, time: String(time) });
  const d = await call<{ resultType: string; result: VectorSample[] }>(ctx, "/api/v1/query", null, what, {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/x-www-form-urlencoded" },
    body: p,
  });
  return d.resultType === "vector" ? d.result : [];
}

/** A range query. */
export async function queryRange(ctx: RequestContext, q: string, start: number, end: number, step: number, what = q): Promise<MatrixSeries[]> {
  const p = new URLSearchParams({ query: q, start: String(start), end: String(end), step: String(step) });
  const d = await call<{ resultType: string; result: MatrixSeries[] }>(ctx, "/api/v1/query_range", null, what, {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/x-www-form-urlencoded" },
    body: p,
  });
  return d.result;
}

/** Values of a label, optionally restricted by series selectors and a time range. */
export async function labelValues(ctx: RequestContext, name: string, match: string[], start?: number, end?: number, what?: string): Promise<string[]> {
  const p = new URLSearchParams();
  for (const m of match) p.append("match[]", m);
  if (start !== undefined) p.set("start", String(start));
  if (end !== undefined) p.set("end", String(end));
  return call<string[]>(ctx, `/api/v1/label/${encodeURIComponent(name)}/values`, p, what ?? `values of ${name}`);
}

/** POST /api/v1/compare. */
export async function compare<T>(ctx: RequestContext, body: unknown): Promise<T> {
  return call<T>(ctx, "/api/v1/compare", null, "compare", {
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
 * is in flight share it, so one caller's abort does not cancel it: that
 * caller's promise rejects, the others still get the detection.
 */
export function naming(ctx: RequestContext = {}): Promise<Naming | null> {
  if (!namingPromise) {
    const p = labelValues({ onWarning: ctx.onWarning }, "__name__", [], undefined, undefined, "metric names").then(detectNaming);
    namingPromise = p;
    const forget = () => {
      if (namingPromise === p) namingPromise = null;
    };
    p.then((n) => {
      if (!n) forget();
    }, forget);
  }
  return abortable(namingPromise, ctx.signal);
}

/** p, unless signal aborts first: then a rejection with the signal's reason. */
function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The scalar value of a vector sample (NaN when absent). */
export function val(s: VectorSample | undefined): number {
  return s?.value ? sampleValue(s.value[1]) : NaN;
}

/** Indexes a vector by one label. */
export function byLabel(v: VectorSample[], label: string): Map<string, VectorSample> {
  return new Map(v.map((s) => [s.metric[label] ?? "", s]));
}

/** One population of a deployment's comparison: a gate request's arm, as the compare API takes it. */
export interface DeploymentArm {
  matchers?: string;
  start?: string;
  end?: string;
}

/** One deployment event of GET /api/v1/deployments. */
export interface Deployment {
  id: string;
  service: string;
  namespace?: string;
  environment?: string;
  version: string;
  previous_version?: string;
  previous_versions?: string[] | null;
  shape: string;
  first_seen: string;
  state: "watching" | "decided";
  verdict: "pass" | "regression" | "inconclusive" | "pending";
  /** same-window (canary) or before-after (rolling, switch: time-shifted). */
  mode?: string;
  reason?: string;
  decided_at?: string;
  /** When the previous version's traffic started to fall, and when it stopped (the rollout's end). */
  fall_at?: string;
  end_at?: string;
  /** Found in stored data (a deploy while spanwatch was down) rather than as it happened. */
  rebuilt?: boolean;
  /** What the latest look compared; an open candidate range ends at the look. */
  compared?: { baseline?: DeploymentArm; candidate?: DeploymentArm };
  /** The gate's JSON report, once there is one. */
  report?: unknown;
}

/** The answer of GET /api/v1/deployments: events newest first, and the services that cannot have any. */
export interface Deployments {
  events: Deployment[];
  withoutVersion: string[];
}

/** GET /api/v1/deployments, newest first. */
export async function deployments(ctx: RequestContext, opts: { service?: string; since?: number; limit?: number } = {}): Promise<Deployments> {
  const p = new URLSearchParams();
  if (opts.service) p.set("service", opts.service);
  if (opts.since !== undefined) p.set("since", String(opts.since));
  if (opts.limit !== undefined) p.set("limit", String(opts.limit));
  const env = await callEnvelope<Deployment[] | null>(ctx, "/api/v1/deployments", p, "deployments");
  return { events: env.data ?? [], withoutVersion: env.services_without_version ?? [] };
}

/** GET /api/v1/deployments/{id}. */
export async function deployment(ctx: RequestContext, id: string): Promise<Deployment> {
  return call<Deployment>(ctx, `/api/v1/deployments/${encodeURIComponent(id)}`, null, "deployment");
}
