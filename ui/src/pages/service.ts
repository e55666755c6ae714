// Service page: operations table, RED charts, latency heatmap, the same split by version.

import { MatrixSeries, naming, query, queryRange, val } from "../api";
import { Chart, heatmap, Line, Marker, timeChart } from "../charts";
import { clear, h, navLink } from "../dom";
import { current, rerender, showError } from "../main";
import { decumulate, errorRatioQuery, fmtMs, fmtNum, fmtPct, kindMatcher, Matcher, Naming, promDuration, quantileQuery, rateWindow, sampleValue, selector, stepFor, sumRate } from "../promql";
import { href, params, setParams, timeRange } from "../state";
import { noTraffic } from "./empty";
import { KIND_CHOICES, keyOf, quantileBy, versionSort } from "./services";

const KIND_LABEL: Record<string, string> = {
  SPAN_KIND_SERVER: "server",
  SPAN_KIND_CLIENT: "client",
  SPAN_KIND_CONSUMER: "consumer",
  SPAN_KIND_PRODUCER: "producer",
  SPAN_KIND_INTERNAL: "internal",
  SPAN_KIND_UNSPECIFIED: "unspecified",
};

/** Aligns matrix values on xs (null where a step has no value). */
function align(xs: number[], s: MatrixSeries | undefined): (number | null)[] {
  const m = new Map((s?.values ?? []).map(([t, v]) => [Math.round(t), sampleValue(v)]));
  return xs.map((t) => {
    const v = m.get(Math.round(t));
    return v === undefined || !Number.isFinite(v) ? null : v;
  });
}

/** A range quantile query: native histograms first, classic buckets when those have no data. */
async function quantileRange(n: Naming, q: number, m: Matcher[], win: string, by: string[], start: number, end: number, step: number): Promise<MatrixSeries[]> {
  if (n.native) {
    const r = await queryRange(quantileQuery(n, q, m, win, by), start, end, step, `P${q * 100} over time (native histograms)`);
    if (r.some((s) => (s.values ?? []).some(([, v]) => Number.isFinite(sampleValue(v))))) return r;
  }
  if (!n.classic) return [];
  return queryRange(quantileQuery(n, q, m, win, by, true), start, end, step, `P${q * 100} over time (classic buckets)`);
}

function summary(lines: Line[], fmt: (v: number) => string): string {
  return lines
    .map((l) => {
      const vs = l.values.filter((v): v is number => v !== null);
      if (!vs.length) return `${l.label}: no data`;
      return `${l.label}: last ${fmt(vs[vs.length - 1])}, max ${fmt(Math.max(...vs))}`;
    })
    .join("; ");
}

export async function renderService(main: HTMLElement, service: string, gen: number) {
  const p = params();
  const tr = timeRange(p);
  const kind = p.get("kind") ?? "entry";
  const op = p.get("op") ?? "";
  document.title = `${service} · spanwatch`;
  const charts: Chart[] = [];
  const cleanup = () => charts.forEach((c) => c.destroy());

  const n = await naming();
  if (!current(gen)) return cleanup;
  const head = h(
    "div",
    { class: "page-head" },
    h("div", {}, h("nav", { "aria-label": "Breadcrumb", class: "crumbs" }, navLink(href("/"), "Services"), " / "), h("h1", {}, service)),
    h("div", { class: "controls" }, navLink(href("/compare", { service }), "Compare versions →")),
  );
  if (!n) {
    clear(main, head, noTraffic());
    return cleanup;
  }
  const step = stepFor(tr.seconds);
  const win = promDuration(rateWindow(step));
  const whole = promDuration(tr.seconds);
  const base: Matcher[] = [["service_name", "=", service], ...kindMatcher(kind)];
  const m: Matcher[] = op ? [...base, [n.op, "=", op]] : base;

  const kindSel = h("select", { "aria-label": "Span kind" }, ...KIND_CHOICES.map(([v, l]) => h("option", { value: v, selected: v === kind }, l)));
  kindSel.addEventListener("change", () => {
    setParams({ kind: kindSel.value === "entry" ? null : kindSel.value, op: null }, true);
    rerender();
  });
  head.querySelector(".controls")!.prepend(h("label", {}, "Span kind ", kindSel));
  const opsBox = h("div", { class: "table-wrap" }, h("p", { class: "muted" }, "Loading operations…"));
  const opNote = op
    ? h("p", { class: "focus" }, "Charts show operation ", h("code", {}, op), ". ", navLink(href(location.pathname, { kind: p.get("kind"), op: null }), "Show all operations"))
    : h("p", { class: "muted" }, "Charts show all operations of this span kind; pick an operation in the table to focus on it.");
  const redBox = h("div", { class: "grid" });
  const heatBox = h("div", {});
  const verBox = h("div", { class: "grid" });
  clear(
    main,
    head,
    h("p", { class: "muted" }, `Latencies from ${n.native ? "native histograms where present, classic buckets otherwise" : "classic buckets"}. Step ${promDuration(step)}, rate window ${win}.`),
    h("h2", {}, "Operations"),
    opsBox,
    h("h2", {}, "Requests, errors, latency"),
    opNote,
    redBox,
    h("h2", {}, "Latency heatmap"),
    heatBox,
    h("h2", {}, "By version"),
    h("p", { class: "muted" }, "The same charts split by service_version; ▶ marks where a version first served traffic in this range."),
    verBox,
  );

  const xs: number[] = [];
  for (let t = tr.start; t <= tr.end; t += step) xs.push(t);
  const add = (box: HTMLElement, c: Chart) => {
    if (!current(gen)) {
      c.destroy();
      return;
    }
    charts.push(c);
    box.appendChild(c.el);
  };

  // Operations table (instant queries over the whole range).
  const opsTask = (async () => {
    const by = [n.op, "span_kind"];
    const [rate, errs, p50, p95, p99] = await Promise.all([
      query(sumRate(selector(n.calls, base), whole, by), tr.end, "operations: request rate"),
      query(errorRatioQuery(n, base, whole, by), tr.end, "operations: error rate"),
      quantileBy(n, 0.5, base, whole, by, tr.end),
      quantileBy(n, 0.95, base, whole, by, tr.end),
      quantileBy(n, 0.99, base, whole, by, tr.end),
    ]);
    if (!current(gen)) return;
    const errBy = new Map(errs.map((s) => [keyOf(s.metric, by), val(s)]));
    const rows = rate.map((s) => {
      const k = keyOf(s.metric, by);
      const r = val(s);
      const q95 = p95.get(k) ?? NaN;
      return { name: s.metric[n.op] ?? "", kind: s.metric.span_kind ?? "", rate: r, err: errBy.get(k) ?? NaN, p50: p50.get(k) ?? NaN, p95: q95, p99: p99.get(k) ?? NaN, impact: Number.isFinite(q95) ? r * q95 : -1 };
    });
    rows.sort((a, b) => b.impact - a.impact || b.rate - a.rate || a.name.localeCompare(b.name));
    if (!rows.length) {
      clear(opsBox, noTraffic(`No ${kind === "all" ? "" : (KIND_CHOICES.find(([v]) => v === kind)?.[1] ?? kind) + " "}spans from ${service} in this range`));
      return;
    }
    clear(
      opsBox,
      h(
        "table",
        { class: "data" },
        h("caption", { class: "sr-only" }, `Operations of ${service}`),
        h(
          "thead",
          {},
          h("tr", {}, ...["Operation", "Kind", "Requests", "Errors", "P50", "P95", "P99"].map((t, i) => h("th", { scope: "col", class: i > 1 ? "num" : "" }, t))),
        ),
        h(
          "tbody",
          {},
          rows.map((r) =>
            h(
              "tr",
              { class: r.name === op ? "selected" : "" },
              h("th", { scope: "row" }, navLink(href(location.pathname, { kind: p.get("kind"), op: r.name }), r.name || "(no name)")),
              h("td", {}, KIND_LABEL[r.kind] ?? r.kind),
              h("td", { class: "num" }, fmtNum(r.rate) + "/s"),
              h("td", { class: "num" + (r.err > 0.01 ? " bad" : "") }, fmtPct(r.err)),
              h("td", { class: "num" }, fmtMs(r.p50)),
              h("td", { class: "num" }, fmtMs(r.p95)),
              h("td", { class: "num" }, fmtMs(r.p99)),
            ),
          ),
        ),
      ),
    );
  })();

  // RED charts.
  const redTask = (async () => {
    const [rate, errs, q50, q95, q99] = await Promise.all([
      queryRange(`sum(rate(${selector(n.calls, m)}[${win}]))`, tr.start, tr.end, step, "request rate over time"),
      queryRange(errorRatioQuery(n, m, win, []), tr.start, tr.end, step, "error rate over time"),
      quantileRange(n, 0.5, m, win, [], tr.start, tr.end, step),
      quantileRange(n, 0.95, m, win, [], tr.start, tr.end, step),
      quantileRange(n, 0.99, m, win, [], tr.start, tr.end, step),
    ]);
    if (!current(gen)) return;
    const rl = [{ label: "requests/s", values: align(xs, rate[0]) }];
    const el = [{ label: "errors", values: align(xs, errs[0]) }];
    const ql = [
      { label: "P50", values: align(xs, q50[0]) },
      { label: "P95", values: align(xs, q95[0]) },
      { label: "P99", values: align(xs, q99[0]) },
    ];
    add(redBox, timeChart("Request rate", xs, rl, "rps", { summary: summary(rl, (v) => fmtNum(v) + "/s") }));
    add(redBox, timeChart("Error rate", xs, el, "ratio", { summary: summary(el, fmtPct) }));
    add(redBox, timeChart("Latency P50 / P95 / P99", xs, ql, "ms", { summary: summary(ql, fmtMs) }));
  })();

  // Heatmap from classic buckets: requests per bucket per step.
  const heatTask = (async () => {
    if (!n.classic) {
      clear(heatBox, h("p", { class: "muted" }, "No classic buckets (", h("code", {}, n.duration + "_bucket"), ") to draw a heatmap from."));
      return;
    }
    const hstep = Math.max(stepFor(tr.seconds, 120), 60);
    const hx: number[] = [];
    for (let t = tr.start; t <= tr.end; t += hstep) hx.push(t);
    const r = await queryRange(`sum by (le) (increase(${selector(n.duration + "_bucket", m)}[${promDuration(hstep)}]))`, tr.start, tr.end, hstep, "latency buckets over time");
    if (!current(gen)) return;
    const les = r.map((s) => ({ le: sampleValue(s.metric.le ?? "NaN"), vals: align(hx, s) })).filter((s) => !Number.isNaN(s.le));
    les.sort((a, b) => a.le - b.le);
    const bounds = les.map((s) => s.le);
    const counts = hx.map((_, i) => decumulate(les.map((s) => [s.le, s.vals[i] ?? 0] as [number, number])).map(([, c]) => c));
    // Drop empty top and bottom rows so the busy part fills the chart.
    let lo = 0;
    let hi = bounds.length - 1;
    const rowEmpty = (j: number) => counts.every((col) => !(col[j] > 0));
    while (lo < hi && rowEmpty(lo)) lo++;
    while (hi > lo && rowEmpty(hi)) hi--;
    const b2 = bounds.slice(Math.max(0, lo - 1), hi + 1);
    const c2 = counts.map((col) => col.slice(Math.max(0, lo - 1), hi + 1));
    const total = c2.reduce((a, col) => a + col.reduce((x, y) => x + y, 0), 0);
    add(heatBox, heatmap(`Requests per latency bucket, every ${promDuration(hstep)}`, hx, b2, c2, `${fmtNum(total)} requests in buckets from ${fmtMs(b2[0])} to ${fmtMs(b2[b2.length - 1])}`));
  })();

  // By version.
  const verTask = (async () => {
    const by = ["service_version"];
    const [rate, errs, q95] = await Promise.all([
      queryRange(sumRate(selector(n.calls, m), win, by), tr.start, tr.end, step, "request rate by version"),
      queryRange(errorRatioQuery(n, m, win, by), tr.start, tr.end, step, "error rate by version"),
      quantileRange(n, 0.95, m, win, by, tr.start, tr.end, step),
    ]);
    if (!current(gen)) return;
    const versions = [...new Set(rate.map((s) => s.metric.service_version ?? ""))].sort(versionSort);
    if (!versions.length || (versions.length === 1 && versions[0] === "")) {
      clear(verBox, h("p", { class: "muted" }, "No ", h("code", {}, "service_version"), " label on these series: set ", h("code", {}, "service.version"), " in the SDK's resource (OTEL_RESOURCE_ATTRIBUTES=service.version=…) to tell versions apart."));
      return;
    }
    const lines = (ms: MatrixSeries[]) => {
      const idx = byLabelMatrix(ms);
      return versions.map((v) => ({ label: v || "(none)", values: align(xs, idx.get(v)) }));
    };
    const rl = lines(rate);
    const markers: Marker[] = [];
    for (const l of rl) {
      const i = l.values.findIndex((v) => v !== null && v > 0);
      if (i > 0) markers.push({ t: xs[i], label: l.label });
    }
    const el = lines(errs);
    const ql = lines(q95);
    add(verBox, timeChart("Request rate by version", xs, rl, "rps", { markers, summary: summary(rl, (v) => fmtNum(v) + "/s") }));
    add(verBox, timeChart("Error rate by version", xs, el, "ratio", { markers, summary: summary(el, fmtPct) }));
    add(verBox, timeChart("P95 by version", xs, ql, "ms", { markers, summary: summary(ql, fmtMs) }));
    if (markers.length) {
      verBox.after(h("p", { class: "muted" }, "First traffic in this range: ", markers.map((mk, i) => [i ? ", " : "", h("strong", {}, mk.label), " at ", new Date(mk.t * 1000).toLocaleString()])));
    }
  })();

  // Errors in one part do not hide the others; each goes to the banner.
  const failed = (box: HTMLElement) => (e: unknown) => {
    if (current(gen)) clear(box, h("p", { class: "bad" }, "Could not load this part: the error is shown above."));
    throw e;
  };
  const results = await Promise.allSettled([opsTask.catch(failed(opsBox)), redTask.catch(failed(redBox)), heatTask.catch(failed(heatBox)), verTask.catch(failed(verBox))]);
  for (const r of results) if (r.status === "rejected" && current(gen)) showError(r.reason);
  return cleanup;
}

function byLabelMatrix(ms: MatrixSeries[]): Map<string, MatrixSeries> {
  return new Map(ms.map((s) => [s.metric.service_version ?? "", s]));
}
