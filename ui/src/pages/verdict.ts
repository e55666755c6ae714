// The gate's report (as `spanwatch gate --format json` writes it) rendered as a table.

import { h } from "../dom";
import { fmtNum } from "../promql";

export interface Finding {
  check: string;
  baseline: number | null;
  candidate: number | null;
  ratio: number | null;
  ci_low: number | null;
  ci_high: number | null;
  resolution_limited: boolean;
  test: string;
  p_value: number | null;
  adjusted_p: number | null;
  significant: boolean;
  large: boolean;
  enough_data: boolean;
  verdict: string;
  reason: string;
}

export interface Result {
  name: string;
  verdict: string;
  reason: string;
  baseline_requests: number;
  candidate_requests: number;
  findings: Finding[] | null;
}

export interface Report {
  service: string;
  verdict: string;
  reason: string;
  baseline: string;
  candidate: string;
  looks: number;
  planned_looks: number;
  waited_seconds: number;
  native_histograms: boolean;
  notes?: string[];
  results: Result[] | null;
  evaluated_at: string;
}

/** One arm's latency histogram; bounds are upper bounds in ms, null is +Inf. */
export interface Distribution {
  bounds: (number | null)[];
  counts: number[];
  requests: number;
  errors: number;
}

/** The data of POST /api/v1/compare. */
export interface CompareData {
  report: Report;
  distributions?: Record<string, Distribution>;
}

export function verdictBadge(verdict: string, reason = ""): HTMLElement {
  const cls = verdict === "pass" ? "ok" : verdict === "regression" ? "bad" : "warn";
  const icon = verdict === "pass" ? "✓" : verdict === "regression" ? "✗" : "?";
  return h("span", { class: `badge ${cls}`, title: reason || verdict }, `${icon} ${verdict}`);
}

function pct(r: number | null): string {
  if (r === null) return "–";
  const v = (r - 1) * 100;
  return (v >= 0 ? "+" : "") + (Math.abs(v) >= 10 ? v.toFixed(0) : v.toFixed(1)) + " %";
}

function pv(p: number | null): string {
  if (p === null) return "–";
  return p < 0.001 ? "<0.001" : p.toFixed(3);
}

function pair(f: Finding | undefined, scale = 1): string {
  if (!f) return "–";
  const s = (v: number | null) => (v === null ? "–" : fmtNum(v * scale));
  return `${s(f.baseline)} → ${s(f.candidate)}`;
}

/** The verdict table: one row for the service and one per operation, as the CLI prints. */
export function verdictTable(rep: Report): HTMLElement {
  const rows = (rep.results ?? []).map((r) => {
    const q = new Map((r.findings ?? []).map((f) => [f.check, f]));
    const p95 = q.get("p95");
    let change = p95 ? pct(p95.ratio) : "–";
    if (p95 && p95.ci_low !== null && p95.ci_high !== null && p95.ci_low > 0) change += ` (${pct(p95.ci_low)}…${pct(p95.ci_high)})`;
    if (p95?.resolution_limited) change += " ≈";
    const minP = (r.findings ?? []).reduce<number | null>((m, f) => (f.adjusted_p !== null && (m === null || f.adjusted_p < m) ? f.adjusted_p : m), null);
    const checks = (r.findings ?? []).map((f) =>
      h("li", { class: f.verdict === "regression" ? "bad" : "" }, h("strong", {}, f.check), ` (${f.test}): `, f.reason || f.verdict),
    );
    return [
      h(
        "tr",
        {},
        h("th", { scope: "row" }, r.name),
        h("td", { class: "num" }, `${fmtNum(r.baseline_requests)} / ${fmtNum(r.candidate_requests)}`),
        h("td", { class: "num" }, pair(q.get("p50"))),
        h("td", { class: "num" }, pair(q.get("p95"))),
        h("td", { class: "num" }, pair(q.get("p99"))),
        h("td", { class: "num" }, change),
        h("td", { class: "num" }, pair(q.get("errors"), 100)),
        h("td", { class: "num" }, pv(minP)),
        h("td", {}, verdictBadge(r.verdict, r.reason)),
      ),
      h("tr", { class: "detail" }, h("td", { colspan: 9 }, h("details", {}, h("summary", {}, r.reason || "details"), h("ul", {}, checks)))),
    ];
  });
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data verdicts" },
      h("caption", { class: "sr-only" }, "Gate verdict per operation"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["Operation", "Requests (base / cand)", "P50 ms", "P95 ms", "P99 ms", "P95 change (CI)", "Errors %", "p (adj.)", "Verdict"].map((t, i) =>
            h("th", { scope: "col", class: i > 0 && i < 8 ? "num" : "" }, t),
          ),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}
