// Services: one row per service, sorted by impact (P95 × request rate).

import { APIError, byLabel, compare, Deployment, deployments, labelValues, naming, query, queryRange, val } from "../api";
import { sparkline } from "../charts";
import { clear, h, navLink } from "../dom";
import { errorRatioQuery, fmtMs, fmtNum, fmtPct, kindMatcher, promDuration, selector, stepFor, sumRate, unitNote } from "../promql";
import type { PageContext } from "../router";
import { href, params, setParams, timeRange } from "../state";
import { noTraffic } from "./empty";
import { firstSeenQuery, KIND_CHOICES, quantileBy, recentRate, versionSort } from "./shared";
import { age, deployBadge, deploymentHref, unixOf } from "./deployments";
import { CompareData, verdictBadge } from "./verdict";

interface Row {
  name: string;
  /** requests per second over the recent window, or the part of it the data covers (rateSeconds) */
  rate: number;
  rateSeconds: number;
  errors: number;
  p95: number;
  spark: (number | null)[];
  versions: string[];
  impact: number;
}

export async function renderServices(main: HTMLElement, ctx: PageContext) {
  const p = params();
  const tr = timeRange(p);
  const kind = p.get("kind") ?? "entry";
  const filter = p.get("q") ?? "";
  document.title = "Services · spanwatch";

  const n = await naming(ctx);
  if (!n) {
    clear(main, h("h1", {}, "Services"), noTraffic());
    return;
  }
  const win = promDuration(tr.seconds);
  const km = kindMatcher(kind);
  const callsSel = selector(n.calls, km);
  const sparkStep = stepFor(tr.seconds, 60);
  // Request rates and live versions: the last 5 minutes (or the range, if
  // shorter), not the whole range, which would average a service that
  // started a minute ago down to a fraction of what it serves.
  const liveSec = Math.min(300, tr.seconds);
  const live = promDuration(liveSec);
  const firstStep = Math.max(1, Math.round(liveSec / 60));

  const search = h("input", { type: "search", placeholder: "Filter services  ( / )", "aria-label": "Filter services", value: filter });
  const kindSel = h("select", { "aria-label": "Span kind" }, ...KIND_CHOICES.map(([v, l]) => h("option", { value: v, selected: v === kind }, l)));
  const status = h("p", { class: "muted", role: "status" }, "Loading…");
  const tableBox = h("div", { class: "table-wrap" });
  clear(
    main,
    h("div", { class: "page-head" }, h("h1", {}, "Services"), h("div", { class: "controls" }, search, h("label", {}, "Span kind ", kindSel))),
    h("p", { class: "muted" }, `Errors and P95 over ${tr.custom ? "the chosen range" : "the last " + tr.label}, requests per second over the last ${live} (or the part of it a service's data covers), sorted by impact (P95 × request rate). Latencies from ${n.native ? "native histograms" : "classic buckets"}${unitNote(n)}; names: ${n.calls}.`),
    status,
    tableBox,
  );
  kindSel.addEventListener("change", () => {
    setParams({ kind: kindSel.value === "entry" ? null : kindSel.value }, true);
    ctx.rerender();
  });

  const [names, recent, firstSeen, errs, p95, spark, versions] = await Promise.all([
    labelValues(ctx, "service_name", [n.calls], tr.start, tr.end, "service names"),
    query(ctx, `sum by (service_name) (increase(${callsSel}[${live}]))`, tr.end, "recent requests"),
    query(ctx, firstSeenQuery(callsSel, live, firstStep, ["service_name"]), tr.end, "first samples of the recent requests"),
    query(ctx, errorRatioQuery(n, km, win, ["service_name"]), tr.end, "error rate"),
    quantileBy(ctx, n, 0.95, km, win, ["service_name"], tr.end),
    queryRange(ctx, sumRate(callsSel, promDuration(Math.max(sparkStep, 60)), ["service_name"]), tr.start, tr.end, sparkStep, "request rate over time"),
    query(ctx, `sum by (service_name, service_version) (increase(${selector(n.calls, [])}[${live}])) > 0`, tr.end, "live versions"),
  ]);

  const recentBy = byLabel(recent, "service_name");
  const firstBy = byLabel(firstSeen, "service_name");
  const errBy = byLabel(errs, "service_name");
  const sparkBy = new Map(spark.map((s) => [s.metric.service_name ?? "", s]));
  const versBy = new Map<string, string[]>();
  for (const s of versions) {
    const v = s.metric.service_version;
    if (!v) continue;
    const svc = s.metric.service_name ?? "";
    versBy.set(svc, [...(versBy.get(svc) ?? []), v].sort(versionSort));
  }
  const sparkXs: number[] = [];
  for (let t = tr.start; t <= tr.end; t += sparkStep) sparkXs.push(t);
  const rows: Row[] = names.map((name) => {
    const { rate: r, seconds } = recentRate(val(recentBy.get(name)), val(firstBy.get(name)), tr.end, liveSec, firstStep);
    const q = p95.get(name) ?? NaN;
    const m = new Map((sparkBy.get(name)?.values ?? []).map(([t, v]) => [Math.round(t), Number(v)]));
    return {
      name,
      rate: r,
      rateSeconds: seconds,
      errors: val(errBy.get(name)),
      p95: q,
      spark: sparkXs.map((t) => m.get(Math.round(t)) ?? null),
      versions: versBy.get(name) ?? [],
      impact: Number.isFinite(r) && Number.isFinite(q) ? r * q : NaN,
    };
  });
  rows.sort((a, b) => {
    const ai = Number.isFinite(a.impact) ? a.impact : -1;
    const bi = Number.isFinite(b.impact) ? b.impact : -1;
    if (ai !== bi) return bi - ai;
    const ar = Number.isFinite(a.rate) ? a.rate : -1;
    const br = Number.isFinite(b.rate) ? b.rate : -1;
    return br - ar || a.name.localeCompare(b.name);
  });

  if (!rows.length) {
    status.remove();
    clear(tableBox, noTraffic(`No services in ${tr.custom ? "the chosen range" : "the last " + tr.label}`));
    return;
  }

  const verdictCells = new Map<string, HTMLTableCellElement>();
  const body = h("tbody");
  for (const r of rows) {
    const vcell = h("td", { class: "verdict-cell" }, r.versions.length >= 2 ? h("span", { class: "muted" }, "…") : h("span", { class: "muted", title: "one version served traffic: nothing to compare" }, "–"));
    verdictCells.set(r.name, vcell);
    const tr_ = h(
      "tr",
      { "data-name": r.name.toLowerCase() },
      h("th", { scope: "row" }, navLink(href(`/service/${encodeURIComponent(r.name)}`, kind === "entry" ? {} : { kind }), r.name)),
      h("td", { class: "num" }, ...rateCell(r, liveSec)),
      h("td", { class: "num" + (r.errors > 0.01 ? " bad" : "") }, fmtPct(r.errors)),
      h("td", { class: "num" }, fmtMs(r.p95)),
      h("td", { class: "spark-cell" }, sparkline(r.spark, `request rate of ${r.name} over the range`)),
      h("td", {}, r.versions.length ? r.versions.map((v) => h("span", { class: "tag" }, v)) : h("span", { class: "muted" }, Number.isFinite(r.rate) ? "no service.version" : "idle")),
      vcell,
    );
    body.appendChild(tr_);
  }
  const table = h(
    "table",
    { class: "data" },
    h("caption", { class: "sr-only" }, "Services sorted by impact"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, "Service"),
        h("th", { scope: "col", class: "num" }, `Requests/s (last ${live})`),
        h("th", { scope: "col", class: "num" }, "Errors"),
        h("th", { scope: "col", class: "num" }, "P95"),
        h("th", { scope: "col" }, "Requests over time"),
        h("th", { scope: "col" }, `Live versions (last ${live})`),
        h("th", { scope: "col" }, "Latest verdict"),
      ),
    ),
    body,
  );
  clear(tableBox, table);
  const applyFilter = () => {
    const f = search.value.trim().toLowerCase();
    let shown = 0;
    for (const row of body.querySelectorAll<HTMLTableRowElement>("tr")) {
      const ok = !f || (row.dataset.name ?? "").includes(f);
      row.hidden = !ok;
      if (ok) shown++;
    }
    status.textContent = f ? `${shown} of ${rows.length} services match “${search.value.trim()}”.` : `${rows.length} service${rows.length === 1 ? "" : "s"}.`;
  };
  search.addEventListener("input", () => {
    setParams({ q: search.value.trim() || null });
    applyFilter();
  });
  applyFilter();

  // Latest verdict: the server's verdict of each service's latest
  // deployment. A server without the deployments API gets the gate's
  // comparison of the two versions that served traffic in its window.
  let events: Deployment[] | null;
  let unversioned = new Set<string>();
  try {
    const ds = await deployments(ctx, { limit: 1000 });
    events = ds.events;
    unversioned = new Set(ds.withoutVersion);
  } catch (e) {
    if (ctx.signal.aborted) return;
    if (!(e instanceof APIError && (e.status === 404 || e.status === 405))) ctx.showError(e);
    events = null;
  }
  // Services with two live versions but no deployment event (both were
  // serving when spanwatch started watching) get the gate's comparison.
  const todo: string[] = [];
  const latest = new Map<string, Deployment>();
  for (const d of events ?? []) if (!latest.has(d.service)) latest.set(d.service, d); // newest first
  for (const r of rows) {
    const d = latest.get(r.name);
    const cell = verdictCells.get(r.name)!;
    if (!d) {
      if (r.versions.length >= 2) {
        todo.push(r.name);
        continue;
      }
      const why = unversioned.has(r.name) || !r.versions.length ? "no service.version resource attribute: deployments cannot be told apart" : "no deployment seen: one version since spanwatch started watching";
      clear(cell, h("span", { class: "muted", title: why }, "–"));
      continue;
    }
    const first = unixOf(d.first_seen);
    clear(cell, navLink(deploymentHref(d), deployBadge(d)), " ", h("span", { class: "muted deploy-meta", title: `${d.previous_version ?? "?"} → ${d.version}, first seen ${new Date(first * 1000).toLocaleString()}` }, `${d.shape} ${d.version}, ${age(first)}`));
  }
  let unavailable = false;
  const worker = async () => {
    for (let name = todo.shift(); name !== undefined; name = todo.shift()) {
      const cell = verdictCells.get(name)!;
      if (unavailable) {
        clear(cell, h("span", { class: "muted", title: "POST /api/v1/compare is not available on this server" }, "n/a"));
        continue;
      }
      try {
        const d = await compare<CompareData>(ctx, { service: name, span_kind: kind === "entry" ? "server" : kind === "all" ? "any" : kind });
        clear(cell, navLink(href("/compare", { service: name, mode: "auto", kind: kind === "all" ? "any" : kind === "entry" ? null : kind }), verdictBadge(d.report.verdict, d.report.reason)));
      } catch (e) {
        if (ctx.signal.aborted) return; // the page was left: the rest is not asked for
        if (e instanceof APIError && (e.status === 404 || e.status === 405)) {
          unavailable = true;
          clear(cell, h("span", { class: "muted", title: "POST /api/v1/compare is not available on this server" }, "n/a"));
        } else if (e instanceof APIError && e.status === 400) {
          clear(cell, h("span", { class: "muted", title: e.message }, "–"));
        } else {
          clear(cell, h("span", { class: "bad", title: (e as Error).message }, "error"));
          ctx.showError(e);
        }
      }
    }
  };
  void Promise.all([worker(), worker(), worker()]);
}

/** The request-rate cell: the rate, and the shorter span it covers when the data does not reach back over the whole window. */
function rateCell(r: Row, windowSec: number): (HTMLElement | string)[] {
  if (!Number.isFinite(r.rate)) return ["–"];
  const out: (HTMLElement | string)[] = [fmtNum(r.rate) + "/s"];
  if (r.rateSeconds < windowSec) {
    out.push(" ", h("span", { class: "muted", title: `the data covers only the last ${promDuration(r.rateSeconds)} of the ${promDuration(windowSec)} window` }, `(last ${promDuration(r.rateSeconds)})`));
  }
  return out;
}
