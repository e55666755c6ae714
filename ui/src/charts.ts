// Charts: uPlot time series and distributions, an SVG sparkline and a canvas heatmap.

import uPlot from "uplot";
import { cssVar, dark, h } from "./dom";
import { fmtMs, fmtNum } from "./promql";

const PALETTE_LIGHT = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7480", "#57606a"];
const PALETTE_DARK = ["#58a6ff", "#ff7b72", "#3fb950", "#d29922", "#bc8cff", "#f778ba", "#39c5cf", "#8b949e"];

export function color(i: number): string {
  const p = dark() ? PALETTE_DARK : PALETTE_LIGHT;
  return p[i % p.length];
}

export type Unit = "rps" | "ratio" | "ms" | "count";

export function fmtUnit(v: number | null | undefined, unit: Unit): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  switch (unit) {
    case "rps":
      return fmtNum(v) + "/s";
    case "ratio":
      return fmtNum(v * 100) + " %";
    case "ms":
      return fmtMs(v);
  }
  return fmtNum(v);
}

export interface Marker {
  t: number; // unix seconds
  label: string;
  /** The line's colour (a CSS colour or a custom property such as "--bad"); the marker colour when absent. */
  color?: string;
  /** Clicking the chart at the marker follows this link (an in-app anchor, also shown to keyboard users beside the chart). */
  link?: HTMLAnchorElement;
}

/** The pixel distance from a marker within which a click on the chart opens it. */
const MARKER_HIT_PX = 6;

export interface Line {
  label: string;
  values: (number | null)[];
}

/** A chart with a title, a legend and a resizing uPlot inside; destroy() frees it. */
export interface Chart {
  el: HTMLElement;
  destroy(): void;
}

function axisColors() {
  const fg = cssVar("--muted") || "#57606a";
  const grid = cssVar("--grid") || "rgba(127,127,127,.2)";
  return { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
}

function observeWidth(box: HTMLElement, u: uPlot, height: number): ResizeObserver {
  const ro = new ResizeObserver(() => {
    const w = Math.max(200, Math.floor(box.clientWidth));
    if (w !== u.width) u.setSize({ width: w, height });
  });
  ro.observe(box);
  return ro;
}

function markerColor(m: Marker): string {
  const c = m.color ?? "--marker";
  return (c.startsWith("--") ? cssVar(c) : c) || "#9a6700";
}

function markersPlugin(markers: Marker[]): uPlot.Plugin {
  const linked = markers.filter((m) => m.link);
  return {
    hooks: {
      init: (u: uPlot) => {
        if (!linked.length) return;
        const near = (ev: MouseEvent) => {
          const x = ev.offsetX;
          let best: Marker | undefined;
          let dist = MARKER_HIT_PX + 1;
          for (const m of linked) {
            const d = Math.abs(u.valToPos(m.t, "x") - x);
            if (d < dist) [best, dist] = [m, d];
          }
          return best;
        };
        u.over.addEventListener("mousemove", (ev) => {
          const m = near(ev);
          u.over.style.cursor = m ? "pointer" : "";
          u.over.title = m ? `${m.label}: click to open` : "";
        });
        u.over.addEventListener("click", (ev) => near(ev)?.link?.click());
      },
      draw: (u: uPlot) => {
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        ctx.save();
        ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
        markers.forEach((m, i) => {
          const x = Math.round(u.valToPos(m.t, "x", true));
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
          ctx.strokeStyle = markerColor(m);
          ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.lineWidth = devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.fillStyle = markerColor(m);
          ctx.fillText("▶ " + m.label, x + 3 * devicePixelRatio, top + (12 + 12 * (i % 3)) * devicePixelRatio);
        });
        ctx.restore();
      },
    },
  };
}

/** A time-series chart: one line per series, x in unix seconds. */
export function timeChart(title: string, xs: number[], lines: Line[], unit: Unit, opts: { markers?: Marker[]; height?: number; summary?: string } = {}): Chart {
  const height = opts.height ?? 200;
  const plot = h("div", { class: "plot" });
  const el = h("figure", { class: "chart" }, h("figcaption", {}, title), plot);
  const marks = (opts.markers ?? []).map((m) => `▶ ${m.label} at ${new Date(m.t * 1000).toLocaleTimeString()}`).join(", ");
  const described = [opts.summary, marks && `markers: ${marks}`].filter(Boolean).join("; ");
  if (described) el.setAttribute("aria-label", `${title}: ${described}`);
  if (!lines.length || !xs.length) {
    plot.appendChild(h("p", { class: "muted empty-chart" }, "No data in this range."));
    return { el, destroy() {} };
  }
  const ax = axisColors();
  const data = [xs, ...lines.map((l) => l.values)] as uPlot.AlignedData;
  const u = new uPlot(
    {
      width: 400,
      height,
      series: [
        {},
        ...lines.map((l, i) => ({
          label: l.label,
          stroke: color(i),
          width: 1.5,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => fmtUnit(v, unit),
        })),
      ],
      axes: [
        { ...ax },
        { ...ax, size: 64, values: (_u: uPlot, vals: number[]) => vals.map((v) => fmtUnit(v, unit)) },
      ],
      scales: { y: { range: (_u: uPlot, min: number, max: number) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
      cursor: { focus: { prox: 16 } },
      legend: { live: true },
      plugins: opts.markers?.length ? [markersPlugin(opts.markers)] : [],
    },
    data,
    plot,
  );
  const ro = observeWidth(plot, u, height);
  return {
    el,
    destroy() {
      ro.disconnect();
      u.destroy();
    },
  };
}

/** An inline SVG sparkline of values (NaN/null skipped). */
export function sparkline(values: (number | null)[], label: string): SVGSVGElement {
  const w = 120;
  const hgt = 28;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("width", String(w));
  svg.setAttribute("height", String(hgt));
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const finite = values.filter((v): v is number => v !== null && Number.isFinite(v));
  if (finite.length < 2) return svg;
  const max = Math.max(...finite, 1e-9);
  const n = values.length;
  let d = "";
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      pen = false;
      return;
    }
    const x = (i / Math.max(1, n - 1)) * (w - 2) + 1;
    const y = hgt - 2 - (v / max) * (hgt - 4);
    d += `${pen ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
    pen = true;
  });
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "1.5");
  svg.appendChild(path);
  return svg;
}

/**
 * A latency heatmap: bucket counts over time (rows are classic buckets with
 * upper bound `bounds[j]`, columns are steps), as in the recipe's dashboard.
 */
export function heatmap(title: string, xs: number[], bounds: number[], counts: number[][], summary: string): Chart {
  const el = h("figure", { class: "chart heatmap" }, h("figcaption", {}, title));
  el.setAttribute("aria-label", `${title}: ${summary}`);
  if (!xs.length || !bounds.length) {
    el.appendChild(h("p", { class: "muted empty-chart" }, "No latency buckets in this range."));
    return { el, destroy() {} };
  }
  const canvas = h("canvas", { role: "img", "aria-label": summary });
  const tip = h("div", { class: "heat-tip", "aria-hidden": "true" });
  const wrap = h("div", { class: "heat-wrap" }, canvas, tip);
  el.appendChild(wrap);
  const height = 220;
  const left = 64;
  const bottom = 22;
  let max = 0;
  for (const col of counts) for (const c of col) max = Math.max(max, c);
  const rowLabel = (j: number) => {
    const b = bounds[j];
    return Number.isFinite(b) ? "≤ " + fmtMs(b) : "> " + fmtMs(bounds[j - 1] ?? 0);
  };
  const draw = () => {
    const width = Math.max(200, wrap.clientWidth);
    const dpr = devicePixelRatio;
    canvas.width = width * dpr;
    canvas.height = height * dpr;
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    const ctx = canvas.getContext("2d")!;
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, width, height);
    const pw = width - left - 8;
    const ph = height - bottom - 4;
    const cw = pw / xs.length;
    const rh = ph / bounds.length;
    const base = dark() ? [88, 166, 255] : [31, 111, 235];
    for (let i = 0; i < xs.length; i++) {
      for (let j = 0; j < bounds.length; j++) {
        const c = counts[i][j];
        if (!(c > 0)) continue;
        const a = 0.08 + 0.92 * (Math.log1p(c) / Math.log1p(max));
        ctx.fillStyle = `rgba(${base[0]},${base[1]},${base[2]},${a.toFixed(3)})`;
        ctx.fillRect(left + i * cw, 4 + ph - (j + 1) * rh, Math.ceil(cw), Math.ceil(rh));
      }
    }
    ctx.fillStyle = cssVar("--muted") || "#57606a";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    const every = Math.max(1, Math.ceil(bounds.length / Math.floor(ph / 14)));
    for (let j = 0; j < bounds.length; j += every) {
      ctx.fillText(rowLabel(j).replace("≤ ", ""), 4, 4 + ph - (j + 0.5) * rh);
    }
    ctx.textBaseline = "alphabetic";
    const ticks = Math.min(6, xs.length);
    for (let k = 0; k < ticks; k++) {
      const i = Math.round((k / Math.max(1, ticks - 1)) * (xs.length - 1));
      const d = new Date(xs[i] * 1000);
      const label = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      const x = Math.min(width - 40, Math.max(left, left + i * cw));
      ctx.fillText(label, x, height - 6);
    }
  };
  const ro = new ResizeObserver(draw);
  ro.observe(wrap);
  canvas.addEventListener("mousemove", (ev) => {
    const r = canvas.getBoundingClientRect();
    const pw = r.width - left - 8;
    const ph = r.height - bottom - 4;
    const i = Math.floor(((ev.clientX - r.left - left) / pw) * xs.length);
    const j = Math.floor(((4 + ph - (ev.clientY - r.top)) / ph) * bounds.length);
    if (i < 0 || i >= xs.length || j < 0 || j >= bounds.length) {
      tip.style.display = "none";
      return;
    }
    tip.textContent = `${new Date(xs[i] * 1000).toLocaleString()} · ${rowLabel(j)}: ${fmtNum(counts[i][j])} requests`;
    tip.style.display = "block";
  });
  canvas.addEventListener("mouseleave", () => (tip.style.display = "none"));
  return { el, destroy: () => ro.disconnect() };
}

export interface Dist {
  label: string;
  bounds: number[]; // upper bounds in ms, ascending; Infinity for +Inf
  counts: number[]; // per bucket (not cumulative)
}

/**
 * Two (or more) latency distributions overlaid: the share of requests per
 * bucket on a log latency axis, so shapes compare whatever the traffic.
 */
export function distributionChart(title: string, dists: Dist[], quantiles: Marker[] = []): Chart {
  const height = 240;
  const plot = h("div", { class: "plot" });
  const el = h("figure", { class: "chart" }, h("figcaption", {}, title), plot);
  const finiteBounds = new Set<number>();
  for (const d of dists) d.bounds.forEach((b) => Number.isFinite(b) && b > 0 && finiteBounds.add(b));
  const xs = [...finiteBounds].sort((a, b) => a - b);
  if (!xs.length || dists.every((d) => d.counts.every((c) => !(c > 0)))) {
    plot.appendChild(h("p", { class: "muted empty-chart" }, "No latency data for these populations."));
    return { el, destroy() {} };
  }
  const lastFinite = xs[xs.length - 1];
  const infX = lastFinite * 2;
  const hasInf = dists.some((d) => d.bounds.some((b, i) => !Number.isFinite(b) && d.counts[i] > 0));
  if (hasInf) xs.push(infX);
  const first = xs[0] / 2;
  const allX = [first, ...xs];
  const series = dists.map((d) => {
    const total = d.counts.reduce((a, b) => a + (b > 0 ? b : 0), 0) || 1;
    const m = new Map<number, number>();
    d.bounds.forEach((b, i) => {
      const x = Number.isFinite(b) ? b : infX;
      if (b > 0 || !Number.isFinite(b)) m.set(x, (m.get(x) ?? 0) + (d.counts[i] > 0 ? d.counts[i] : 0));
      else m.set(xs[0], (m.get(xs[0]) ?? 0) + (d.counts[i] > 0 ? d.counts[i] : 0));
    });
    // The point at x[i] carries the bucket ending at x[i]; the stepped path draws it over (x[i-1], x[i]].
    return [null, ...xs.map((x) => ((m.get(x) ?? 0) / total) * 100)] as (number | null)[];
  });
  const ax = axisColors();
  const u = new uPlot(
    {
      width: 400,
      height,
      scales: { x: { time: false, distr: 3, log: 10 }, y: { range: (_u: uPlot, _min: number, max: number) => [0, max * 1.1 || 1] } },
      series: [
        { label: "latency ≤", value: (_u: uPlot, v: number | null) => (v === null ? "–" : v >= infX ? "+Inf" : fmtMs(v)) },
        ...dists.map((d, i) => ({
          label: d.label,
          stroke: color(i),
          fill: color(i) + "33",
          width: 1.5,
          points: { show: false },
          paths: uPlot.paths.stepped!({ align: -1 }),
          value: (_u: uPlot, v: number | null) => (v === null ? "–" : fmtNum(v) + " %"),
        })),
      ],
      axes: [
        { ...ax, values: (_u: uPlot, vals: (number | null)[]) => vals.map((v) => (v === null ? "" : v >= infX ? "+Inf" : fmtMs(v))) },
        { ...ax, size: 56, values: (_u: uPlot, vals: number[]) => vals.map((v) => fmtNum(v) + " %") },
      ],
      legend: { live: true },
      plugins: quantiles.length ? [markersPlugin(quantiles)] : [],
    },
    [allX, ...series] as uPlot.AlignedData,
    plot,
  );
  const ro = observeWidth(plot, u, height);
  return {
    el,
    destroy() {
      ro.disconnect();
      u.destroy();
    },
  };
}
