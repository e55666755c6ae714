// Compare: the gate's verdict for a baseline and a candidate, and the two latency distributions overlaid.

import { compare, labelValues, naming } from "../api";
import { Chart, Dist, distributionChart, Marker } from "../charts";
import { clear, h, navLink } from "../dom";
import { escapeLabelValue, fmtMs, fmtNum, fmtPct, kindMatcher, Matcher, selector } from "../promql";
import type { PageContext } from "../router";
import { href, params, setParams, timeRange } from "../state";
import { noTraffic } from "./empty";
import { versionSort } from "./shared";
import { CompareData, verdictBadge, verdictTable } from "./verdict";

const MODES: [string, string][] = [
  ["versions", "Two versions, same window"],
  ["auto", "The two versions that served traffic (as the gate picks them)"],
  ["offset", "Now against the same window earlier"],
  ["ranges", "Two time ranges"],
];
const WINDOWS = ["5m", "15m", "30m", "1h", "3h", "6h", "24h"];
const OFFSETS = ["1h", "1d", "1w"];
const KINDS = ["server", "client", "consumer", "producer", "internal", "any"];

function toLocalInput(sec: number): string {
  if (!Number.isFinite(sec)) return "";
  const d = new Date(sec * 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(v: string): number {
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? Math.floor(t / 1000) : NaN;
}

function rfc3339(sec: number): string {
  return new Date(sec * 1000).toISOString().replace(/\.000Z$/, "Z");
}

function select(label: string, name: string, options: [string, string][], value: string, extra: Record<string, string | boolean> = {}): [HTMLLabelElement, HTMLSelectElement] {
  const sel = h("select", { name, id: "f-" + name, ...extra }, ...options.map(([v, l]) => h("option", { value: v, selected: v === value }, l)));
  return [h("label", { for: "f-" + name }, label), sel];
}

export async function renderCompare(main: HTMLElement, ctx: PageContext) {
  const p = params();
  const tr = timeRange(p);
  document.title = "Compare · spanwatch";
  const charts: Chart[] = [];
  const cleanup = () => charts.forEach((c) => c.destroy());
  const n = await naming(ctx);
  if (!n) {
    clear(main, h("h1", {}, "Compare"), noTraffic());
    return cleanup;
  }
  const services = await labelValues(ctx, "service_name", [n.calls], tr.start, tr.end, "service names");
  if (!services.length) {
    clear(main, h("h1", {}, "Compare"), noTraffic(`No services in ${tr.custom ? "the chosen range" : "the last " + tr.label}`));
    return cleanup;
  }
  const service = p.get("service") ?? "";
  const mode = p.get("mode") ?? "versions";
  const versions = service
    ? (await labelValues(ctx, "service_version", [selector(n.calls, [["service_name", "=", service]])], tr.start, tr.end, "versions")).sort(versionSort)
    : [];
  const kind = p.get("kind") ?? "server";
  const opMatchers: Matcher[] = [["service_name", "=", service], ...(kind === "any" ? [] : kindMatcher(kind))];
  const operations = service ? await labelValues(ctx, n.op, [selector(n.calls, opMatchers)], tr.start, tr.end, "operations") : [];

  const [svcLabel, svcSel] = select("Service", "service", [["", "— pick a service —"], ...services.map((s) => [s, s] as [string, string])], service, { required: true });
  const [modeLabel, modeSel] = select("Compare", "mode", MODES, mode);
  // A shared link's versions stay choosable when they served outside the page's range.
  const known = [...new Set([...versions, ...[p.get("base"), p.get("cand")].filter((v): v is string => !!v)])].sort(versionSort);
  const vopts: [string, string][] = [["", "any version"], ...known.map((v) => [v, v] as [string, string])];
  const ranged = mode === "ranges";
  const [baseLabel, baseSel] = select("Baseline version", "base", vopts, p.get("base") ?? (ranged ? "" : (versions[versions.length - 2] ?? versions[0] ?? "")));
  const [candLabel, candSel] = select("Candidate version", "cand", vopts, p.get("cand") ?? (ranged ? "" : (versions[versions.length - 1] ?? "")));
  const [offLabel, offSel] = select("Baseline: same window, earlier by", "offset", OFFSETS.map((o) => [o, o]), p.get("offset") ?? "1d");
  const [winLabel, winSel] = select("Window", "window", [["", "gate default (5m)"], ...WINDOWS.map((w) => [w, w] as [string, string])], p.get("window") ?? "");
  const [kindLabel, kindSel] = select("Span kind", "kind", KINDS.map((k) => [k, k]), kind);
  const chosenOps = new Set(p.getAll("op"));
  const opsSel = h("select", { name: "op", id: "f-op", multiple: true, size: Math.min(6, Math.max(2, operations.length)) }, ...operations.map((o) => h("option", { value: o, selected: chosenOps.has(o) }, o)));
  const opsLabel = h("label", { for: "f-op" }, "Operations (none selected: all)");
  const t = (k: string, d: number) => (p.has(k) ? Number(p.get(k)) : d);
  // The inputs have minute resolution: a range from a link (a deployment's
  // windows) is kept to the second while its input still shows it.
  const exact = (input: HTMLInputElement, k: string) => {
    const v = Number(p.get(k));
    return p.has(k) && Number.isFinite(v) && input.value === toLocalInput(v) ? v : fromLocalInput(input.value);
  };
  const half = Math.floor(tr.seconds / 2);
  const bStart = h("input", { type: "datetime-local", id: "f-bstart", value: toLocalInput(t("bstart", tr.start)) });
  const bEnd = h("input", { type: "datetime-local", id: "f-bend", value: toLocalInput(t("bend", tr.start + half)) });
  const cStart = h("input", { type: "datetime-local", id: "f-cstart", value: toLocalInput(t("cstart", tr.start + half)) });
  const cEnd = h("input", { type: "datetime-local", id: "f-cend", value: toLocalInput(t("cend", tr.end)) });

  const fs = (cls: string, legend: string, ...kids: Node[]) => h("fieldset", { class: cls }, h("legend", {}, legend), ...kids);
  const versionsFs = fs("mode-versions", "Versions", h("div", { class: "field" }, baseLabel, baseSel), h("div", { class: "field" }, candLabel, candSel));
  if (service && versions.length < 2) {
    versionsFs.appendChild(h("p", { class: "muted" }, `${service} has ${versions.length ? "one version (" + versions[0] + ")" : "no service_version label"} in this time range: compare two time ranges instead, or widen the range.`));
  }
  const offsetFs = fs("mode-offset", "Baseline", h("div", { class: "field" }, offLabel, offSel), h("p", { class: "muted" }, "Confounded by daily traffic patterns; prefer two versions in the same window."));
  const rangesFs = fs(
    "mode-ranges",
    "Time ranges",
    h("div", { class: "field" }, h("label", { for: "f-bstart" }, "Baseline from"), bStart),
    h("div", { class: "field" }, h("label", { for: "f-bend" }, "to"), bEnd),
    h("div", { class: "field" }, h("label", { for: "f-cstart" }, "Candidate from"), cStart),
    h("div", { class: "field" }, h("label", { for: "f-cend" }, "to"), cEnd),
  );
  const form = h(
    "form",
    { class: "compare-form" },
    h("div", { class: "row" }, h("div", { class: "field" }, svcLabel, svcSel), h("div", { class: "field" }, modeLabel, modeSel), h("div", { class: "field" }, winLabel, winSel), h("div", { class: "field" }, kindLabel, kindSel)),
    h("div", { class: "row" }, versionsFs, offsetFs, rangesFs, h("div", { class: "field ops" }, opsLabel, opsSel)),
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Compare")),
  );
  const showMode = () => {
    versionsFs.hidden = modeSel.value !== "versions" && modeSel.value !== "ranges";
    offsetFs.hidden = modeSel.value !== "offset";
    rangesFs.hidden = modeSel.value !== "ranges";
    winSel.disabled = modeSel.value === "ranges";
  };
  modeSel.addEventListener("change", showMode);
  showMode();
  svcSel.addEventListener("change", () => {
    setParams({ service: svcSel.value, base: null, cand: null, op: null }, true);
    ctx.rerender();
  });
  kindSel.addEventListener("change", () => {
    setParams({ kind: kindSel.value === "server" ? null : kindSel.value, op: null }, true);
    ctx.rerender();
  });
  const out = h("section", { class: "compare-out", "aria-live": "polite" });
  clear(
    main,
    h("div", { class: "page-head" }, h("h1", {}, "Compare"), service ? h("div", { class: "controls" }, navLink(href(`/service/${encodeURIComponent(service)}`), `${service} →`)) : null),
    h("p", { class: "muted" }, "The gate's verdict (the same statistics as ", h("code", {}, "spanwatch gate"), ") and the two latency distributions behind it."),
    form,
    out,
  );

  const run = async () => {
    cleanup();
    charts.length = 0;
    const m = modeSel.value;
    const body: Record<string, unknown> = { service: svcSel.value, span_kind: kindSel.value };
    const ops = [...opsSel.selectedOptions].map((o) => o.value);
    if (ops.length) body.operations = ops;
    if (winSel.value && m !== "ranges") body.window = winSel.value;
    const url: Record<string, string | null> = { service: svcSel.value, mode: m === "versions" ? null : m, window: winSel.value || null, kind: kindSel.value === "server" ? null : kindSel.value };
    if (m === "versions") {
      if (!baseSel.value || !candSel.value || baseSel.value === candSel.value) {
        clear(out, h("p", { class: "bad" }, "Pick two different versions (or compare two time ranges)."));
        return;
      }
      body.baseline = { matchers: `service_version="${escapeLabelValue(baseSel.value)}"` };
      body.candidate = { matchers: `service_version="${escapeLabelValue(candSel.value)}"` };
      Object.assign(url, { base: baseSel.value, cand: candSel.value });
    } else if (m === "offset") {
      body.baseline = { offset: offSel.value };
      body.candidate = {};
      url.offset = offSel.value;
    } else if (m === "ranges") {
      const [bs, be, cs, ce] = ([[bStart, "bstart"], [bEnd, "bend"], [cStart, "cstart"], [cEnd, "cend"]] as const).map(([i, k]) => exact(i, k));
      if (![bs, be, cs, ce].every(Number.isFinite) || be <= bs || ce <= cs) {
        clear(out, h("p", { class: "bad" }, "Each range needs a start before its end."));
        return;
      }
      // Versions are optional here: a deployment's before/after comparison names both.
      const arm = (start: number, end: number, version: string) => ({ start: rfc3339(start), end: rfc3339(end), ...(version ? { matchers: `service_version="${escapeLabelValue(version)}"` } : {}) });
      body.baseline = arm(bs, be, baseSel.value);
      body.candidate = arm(cs, ce, candSel.value);
      Object.assign(url, { bstart: String(bs), bend: String(be), cstart: String(cs), cend: String(ce), base: baseSel.value || null, cand: candSel.value || null });
    }
    const q = new URLSearchParams(location.search);
    for (const k of ["service", "mode", "window", "kind", "base", "cand", "offset", "bstart", "bend", "cstart", "cend", "op"]) q.delete(k);
    for (const [k, v] of Object.entries(url)) if (v) q.set(k, v);
    for (const o of ops) q.append("op", o);
    history.replaceState(null, "", `${location.pathname}?${q}`);

    clear(out, h("p", { class: "muted" }, "Comparing…"));
    let d: CompareData;
    try {
      d = await compare<CompareData>(ctx, body);
    } catch (e) {
      clear(out, h("p", { class: "bad" }, "The comparison failed; see the error above."));
      ctx.showError(e);
      return;
    }
    const rep = d.report;
    const service = (rep.results ?? []).find((r) => r.name === "(service)");
    const f = new Map((service?.findings ?? []).map((x) => [x.check, x]));
    const dists: Dist[] = [];
    const markers: Marker[] = [];
    for (const [arm, label] of [["baseline", "baseline"], ["candidate", "candidate"]] as const) {
      const dd = d.distributions?.[arm];
      if (!dd) continue;
      const desc = arm === "baseline" ? rep.baseline : rep.candidate;
      dists.push({ label: `${label}: ${desc} (${fmtNum(dd.requests)} req, ${fmtPct(dd.requests ? dd.errors / dd.requests : NaN)} errors)`, bounds: dd.bounds.map((b) => (b === null ? Infinity : b)), counts: dd.counts });
      const p95 = f.get("p95")?.[arm];
      if (p95 !== undefined && p95 !== null) markers.push({ t: p95, label: `P95 ${label} ${fmtMs(p95)}` });
    }
    const chart = distributionChart("Latency distribution: share of requests per bucket", dists, markers);
    charts.push(chart);
    clear(
      out,
      h(
        "div",
        { class: "verdict-head" },
        verdictBadge(rep.verdict, rep.reason),
        h("div", {}, h("p", { class: "reason" }, rep.reason), h("p", { class: "muted" }, `baseline: ${rep.baseline} · candidate: ${rep.candidate} · latencies from ${rep.native_histograms ? "native histograms" : "classic buckets"} · evaluated ${rep.evaluated_at}`)),
      ),
      rep.notes?.length ? h("ul", { class: "notes" }, rep.notes.map((x) => h("li", {}, x))) : null,
      verdictTable(rep),
      d.distributions ? chart.el : h("p", { class: "muted" }, "This server's compare answer has no latency distributions."),
    );
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!svcSel.value) {
      svcSel.focus();
      return;
    }
    void run();
  });
  // A shared link (or "Latest verdict" on the services page) runs the comparison at once.
  if (service && (mode !== "versions" || versions.length >= 2)) void run();
  return cleanup;
}
