// Service page: operations table, RED charts, latency heatmap, the same split by version.

import { APIError, deployments, MatrixSeries, naming, query, queryRange, RequestContext, val } from "../api";
import { Chart, heatmap, Line, Marker, timeChart } from "../charts";
import { clear, h, navLink } from "../dom";
import { decumulate, errorRatioQuery, fmtMs, fmtNum, fmtPct, kindMatcher, Matcher, msBound, Naming, promDuration, quantileQuery, rateWindow, sampleValue, selector, stepFor, sumRate, unitNote } from "../promql";
import type { PageContext } from "../router";
import { href, params, setParams, timeRange } from "../state";
import { deployBadge, deploymentHref, unixOf } from "./deployments";
import { noTraffic } from "./empty";
import { KIND_CHOICES, keyOf, quantileBy, versionSort } from "./shared";

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
async function quantileRange(ctx: RequestContext, n: Naming, q: number, m: Matcher[], win: string, by: string[], start: number, end: number, step: number): Promise<MatrixSeries[]> {
  const what = pName(q) + overTime(by);
  if (n.native) {
    const r = await queryRange(ctx, quantileQuery(n, q, m, win, by), start, end, step, `${what} (native histograms)`);
    if (r.some((s) => (s.values ?? []).some(([, v]) => Number.isFinite(sampleValue(v))))) return r;
  }
  if (!n.classic) return [];
  return queryRange(ctx, quantileQuery(n, q, m, win, by, true), start, end, step, `${what} (classic buckets)`);
}

/** "P95" for 0.95. */
const pName = (q: number) => `P${Math.round(q * 1000) / 10}`;

/** How a query's series are grouped, for error messages. */
const overTime = (by: string[]) => (by.length ? ` by ${by.join(", ")}` : " over time");

function summary(lines: Line[], fmt: (v: number) => string): string {
  return lines
    .map((l) => {
      const vs = l.values.filter((v): v is number => v !== null);
      if (!vs.length) return `${l.label}: no data`;
      return `${l.label}: last ${fmt(vs[vs.length - 1])}, max ${fmt(Math.max(...vs))}`;
    })
    .join("; ");
}

const QUANTILES = [0.5, 0.95, 0.99];

/** The RED series over time of one selection, grouped by `by` (none: one series each). */
interface Red {
  rate: MatrixSeries[];
  errors: MatrixSeries[];
  quantiles: [q: number, series: MatrixSeries[]][];
}

/** Queries the RED series; `rate` may be passed in when it is already being fetched. */
async function redRange(ctx: RequestContext, n: Naming, m: Matcher[], win: string, by: string[], start: number, end: number, step: number, rate?: Promise<MatrixSeries[]>): Promise<Red> {
  const sfx = overTime(by);
  const [r, errors, ...qs] = await Promise.all([
    rate ?? queryRange(ctx, sumRate(selector(n.calls, m), win, by), start, end, step, "request rate" + sfx),
    queryRange(ctx, errorRatioQuery(n, m, win, by), start, end, step, "error rate" + sfx),
    ...QUANTILES.map((q) => quantileRange(ctx, n, q, m, win, by, start, end, step)),
  ]);
  return { rate: r, errors, quantiles: QUANTILES.map((q, i) => [q, qs[i]]) };
}

/**
 * The RED charts of `red`: request rate, error rate and latency. Without
 * `split` each chart has one line per measure and the quantiles share one
 * chart; with it each chart has the lines split returns (one per version)
 * and each quantile gets a chart of its own.
 */
function redCharts(xs: number[], red: Red, markers: Marker[], split?: { title: string; lines: (ms: MatrixSeries[]) => Line[] }): Chart[] {
  const lines = (ms: MatrixSeries[], label: string): Line[] => (split ? split.lines(ms) : [{ label, values: align(xs, ms[0]) }]);
  const sfx = split ? " " + split.title : "";
  const rps = (v: number) => fmtNum(v) + "/s";
  const rl = lines(red.rate, "requests/s");
  const el = lines(red.errors, "errors");
  const out = [timeChart("Request rate" + sfx, xs, rl, "rps", { markers, summary: summary(rl, rps) }), timeChart("Error rate" + sfx, xs, el, "ratio", { markers, summary: summary(el, fmtPct) })];
  const ql = red.quantiles.map(([q, ms]) => ({ q, lines: lines(ms, pName(q)) }));
  if (split) {
    for (const { q, lines: l } of ql) out.push(timeChart(pName(q) + sfx, xs, l, "ms", { markers, summary: summary(l, fmtMs) }));
  } else {
    const l = ql.flatMap((x) => x.lines);
    out.push(timeChart("Latency " + ql.map((x) => pName(x.q)).join(" / "), xs, l, "ms", { markers, summary: summary(l, fmtMs) }));
  }
  return out;
}

/** The colour of a deploy marker by the deployment's verdict. */
const VERDICT_COLOR: Record<string, string> = { pass: "--ok", regression: "--bad", inconclusive: "--warn", watching: "--marker", pending: "--marker" };

/** When each version first served traffic: the step index, -1 for none in the range. */
interface FirstTraffic {
  label: string;
  index: number;
}

/**
 * The first step with traffic of each version. A version serving at the
 * first step may have started before the range: it gets no marker.
 */
function firstTraffic(xs: number[], rates: Line[]): { first: FirstTraffic[]; markers: Marker[] } {
  const first = rates.map((l) => ({ label: l.label, index: l.values.findIndex((v) => v !== null && v > 0) }));
  const markers = first.filter((f) => f.index > 0).map((f) => ({ t: xs[f.index], label: f.label }));
  return { first, markers };
}

export async function renderService(main: HTMLElement, ctx: PageContext, service: string) {
  const p = params();
  const tr = timeRange(p);
  const kind = p.get("kind") ?? "entry";
  const op = p.get("op") ?? "";
  document.title = `${service} · spanwatch`;
  const charts: Chart[] = [];
  const cleanup = () => charts.forEach((c) => c.destroy());

  const n = await naming(ctx);
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
    ctx.rerender();
  });
  head.querySelector(".controls")!.prepend(h("label", {}, "Span kind ", kindSel));
  const opsBox = h("div", { class: "table-wrap" }, h("p", { class: "muted" }, "Loading operations…"));
  const opNote = op
    ? h("p", { class: "focus" }, "Charts show operation ", h("code", {}, op), ". ", navLink(href(location.pathname, { kind: p.get("kind"), op: null }), "Show all operations"))
    : h("p", { class: "muted" }, "Charts show all operations of this span kind; pick an operation in the table to focus on it.");
  const redBox = h("div", { class: "grid" });
  const heatBox = h("div", {});
  const verBox = h("div", { class: "grid" });
  const deployNote = h("p", { class: "muted deploys" });
  clear(
    main,
    head,
    h("p", { class: "muted" }, `Latencies from ${n.native ? "native histograms where present, classic buckets otherwise" : "classic buckets"}${unitNote(n)}. Step ${promDuration(step)}, rate window ${win}.`),
    h("h2", {}, "Operations"),
    opsBox,
    h("h2", {}, "Requests, errors, latency"),
    opNote,
    deployNote,
    redBox,
    h("h2", {}, "Latency heatmap"),
    heatBox,
    h("h2", {}, "By version"),
    h(
      "p",
      { class: "muted" },
      "The same charts split by service_version. ▶ marks, here and on the charts above, each deployment in this range, coloured by its verdict (click one to open it); without the server's deployments, where a version first served traffic.",
    ),
    verBox,
  );

  const xs: number[] = [];
  for (let t = tr.start; t <= tr.end; t += step) xs.push(t);
  // A chart made for a page that was left is freed at once.
  const add = (box: HTMLElement, c: Chart) => {
    if (ctx.signal.aborted) {
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
      query(ctx, sumRate(selector(n.calls, base), whole, by), tr.end, "operations: request rate"),
      query(ctx, errorRatioQuery(n, base, whole, by), tr.end, "operations: error rate"),
      quantileBy(ctx, n, 0.5, base, whole, by, tr.end),
      quantileBy(ctx, n, 0.95, base, whole, by, tr.end),
      quantileBy(ctx, n, 0.99, base, whole, by, tr.end),
    ]);
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

  // Versions: their request rate also places the first-traffic markers on the main charts.
  const verBy = ["service_version"];
  const verRate = queryRange(ctx, sumRate(selector(n.calls, m), win, verBy), tr.start, tr.end, step, "request rate by service_version");
  const verLines = verRate.then((rate) => {
    const versions = [...new Set(rate.map((s) => s.metric.service_version ?? ""))].sort(versionSort);
    const lines = (ms: MatrixSeries[]) => {
      const idx = byLabelMatrix(ms);
      return versions.map((v) => ({ label: v || "(none)", values: align(xs, idx.get(v)) }));
    };
    const labelled = versions.length > 1 || (versions.length === 1 && versions[0] !== "");
    return { lines, labelled, idle: !versions.length, ...(labelled ? firstTraffic(xs, lines(rate)) : { first: [], markers: [] }) };
  });

  // Deploy markers: the server's deployments of this service in the range
  // (null: a server without the deployments API, which gets first-traffic markers).
  const deployMarkers = deployments(ctx, { service, since: tr.start, limit: 200 }).then(
    ({ events: ds }) => {
      const inRange = ds.filter((d) => d.service === service && unixOf(d.first_seen) >= tr.start && unixOf(d.first_seen) <= tr.end).reverse();
      const out: Marker[] = inRange.map((d) => {
        const verdict = d.state === "watching" ? "watching" : d.verdict;
        const label = `${d.version} ${verdict}`;
        return { t: unixOf(d.first_seen), label, color: VERDICT_COLOR[verdict] ?? "--marker", link: navLink(deploymentHref(d), deployBadge(d), " ", `${d.previous_version ? d.previous_version + " → " : ""}${d.version} (${d.shape}) at ${new Date(unixOf(d.first_seen) * 1000).toLocaleString()}`) };
      });
      clear(deployNote, out.length ? ["Deployments in this range: ", out.map((mk, i) => [i ? "; " : "", mk.link!]), "."] : "No deployments of this service in this range: ▶ marks where a version first served traffic.");
      return out;
    },
    (e) => {
      if (e instanceof APIError && (e.status === 404 || e.status === 405)) return null;
      throw e;
    },
  );
  // With no deployment in the range, ▶ marks where a version first served traffic.
  const markersFor = (first: Marker[]) => deployMarkers.then((d) => (d?.length ? d : first));

  // RED charts.
  const redTask = (async () => {
    const [red, markers] = await Promise.all([
      redRange(ctx, n, m, win, [], tr.start, tr.end, step),
      markersFor(await verLines.then((v) => v.markers).catch(() => [] as Marker[])), // the by-version part reports the error
    ]);
    for (const c of redCharts(xs, red, markers)) add(redBox, c);
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
    const r = await queryRange(ctx, `sum by (le) (increase(${selector(n.duration + "_bucket", m)}[${promDuration(hstep)}]))`, tr.start, tr.end, hstep, "latency buckets over time");
    const les = r.map((s) => ({ le: msBound(n, s.metric.le), vals: align(hx, s) })).filter((s) => !Number.isNaN(s.le));
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
    // The split queries run alongside the request rate; their results go unused when there are no versions.
    const red = redRange(ctx, n, m, win, verBy, tr.start, tr.end, step, verRate);
    red.catch(() => {});
    const v = await verLines;
    if (v.idle) {
      clear(verBox, h("p", { class: "muted" }, "No traffic in this range."));
      return;
    }
    if (!v.labelled) {
      clear(verBox, h("p", { class: "muted" }, "No ", h("code", {}, "service_version"), " label on these series: set ", h("code", {}, "service.version"), " in the SDK's resource (OTEL_RESOURCE_ATTRIBUTES=service.version=…) to tell versions apart."));
      return;
    }
    const r = await red;
    const markers = await markersFor(v.markers).catch(() => v.markers); // the main charts report the error
    for (const c of redCharts(xs, r, markers, { title: "by version", lines: v.lines })) add(verBox, c);
    const when = (f: FirstTraffic) =>
      f.index < 0 ? "no traffic in this range" : f.index === 0 ? "serving when the range starts" : "▶ first traffic at " + new Date(xs[f.index] * 1000).toLocaleString();
    verBox.after(h("p", { class: "muted versions" }, "Versions in this range: ", v.first.map((f, i) => [i ? "; " : "", h("strong", {}, f.label), ": ", when(f)]), "."));
  })();

  // Errors in one part do not hide the others; each goes to the banner.
  const failed = (box: HTMLElement) => (e: unknown) => {
    clear(box, h("p", { class: "bad" }, "Could not load this part: the error is shown above."));
    throw e;
  };
  const results = await Promise.allSettled([opsTask.catch(failed(opsBox)), redTask.catch(failed(redBox)), heatTask.catch(failed(heatBox)), verTask.catch(failed(verBox))]);
  for (const r of results) if (r.status === "rejected") ctx.showError(r.reason);
  return cleanup;
}

function byLabelMatrix(ms: MatrixSeries[]): Map<string, MatrixSeries> {
  return new Map(ms.map((s) => [s.metric.service_version ?? "", s]));
}
