// Deployments: the server's automatic verdict of every new version, newest
// first, and one event's page with the gate's report behind its verdict.

import { Deployment, deployment, DeploymentArm, deployments } from "../api";
import { clear, h, navLink } from "../dom";
import type { PageContext } from "../router";
import { href, params, setParams } from "../state";
import { Report, verdictBadge, verdictTable } from "./verdict";

const SHAPES: Record<string, string> = {
  canary: "canary: both versions served side by side",
  rolling: "rolling update: the old version's share fell to zero over minutes",
  switch: "switch: the old version stopped at once (recreate or blue/green)",
  rollback: "rollback: a version seen before came back",
};

/** Seconds since the Unix epoch of an RFC 3339 time (NaN when absent or malformed). */
export function unixOf(t: string | undefined): number {
  if (!t) return NaN;
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms / 1000 : NaN;
}

/** "3m ago", "2h ago", "just now" for a time in unix seconds. */
export function age(sec: number, now = Date.now() / 1000): string {
  if (!Number.isFinite(sec)) return "";
  const d = Math.max(0, now - sec);
  if (d < 45) return "just now";
  if (d < 3600) return `${Math.round(d / 60)}m ago`;
  if (d < 86400 * 2) return `${Math.round(d / 3600)}h ago`;
  return `${Math.round(d / 86400)}d ago`;
}

/** The verdict badge of a deployment: "watching" while the server still decides. */
export function deployBadge(d: Deployment): HTMLElement {
  if (d.state === "watching" || d.verdict === "pending") {
    return h("span", { class: "badge watch", title: d.reason || "the server is still collecting data for this deployment" }, "… watching");
  }
  return verdictBadge(d.verdict, d.reason);
}

/** The versions a deployment replaced, in words. */
function fromTo(d: Deployment): string {
  return d.previous_version ? `${d.previous_version} → ${d.version}` : `${d.version} (no earlier version seen)`;
}

/** The version a gate arm's matchers select ("" when they do not select one). */
export function armVersion(a: DeploymentArm | undefined): string {
  const m = /service_version\s*=\s*"((?:[^"\\]|\\.)*)"/.exec(a?.matchers ?? "");
  return m ? m[1].replace(/\\(.)/g, "$1") : "";
}

/**
 * The Compare page's parameters for what a deployment's verdict compared:
 * its two versions, over the event's two windows when the verdict was a
 * before/after comparison (rolling, switch), else in the same window. An
 * open candidate range ends when the verdict was decided (or now).
 */
export function compareParams(d: Deployment, now = Date.now() / 1000): Record<string, string | null> {
  const b = d.compared?.baseline;
  const c = d.compared?.candidate;
  const base = armVersion(b) || d.previous_version || "";
  const cand = armVersion(c) || d.version;
  const out: Record<string, string | null> = { service: d.service, base, cand };
  const decided = unixOf(d.decided_at);
  const [bs, be, cs] = [b?.start, b?.end, c?.start].map(unixOf);
  const ce = c?.end ? unixOf(c.end) : Number.isFinite(decided) ? decided : now;
  if ([bs, be, cs, ce].every(Number.isFinite) && ce > cs) {
    Object.assign(out, { mode: "ranges", bstart: String(Math.floor(bs)), bend: String(Math.ceil(be)), cstart: String(Math.floor(cs)), cend: String(Math.ceil(ce)) });
  }
  return out;
}

/** A link to the deployment's own page. */
export function deploymentHref(d: Deployment): string {
  return href(`/deployments/${encodeURIComponent(d.id)}`);
}

function eventRow(d: Deployment): HTMLElement {
  const first = unixOf(d.first_seen);
  const title = Number.isFinite(first) ? new Date(first * 1000).toLocaleString() : d.first_seen;
  return h(
    "li",
    { class: `event ${d.verdict}`, "data-id": d.id, "data-service": d.service },
    h("div", { class: "event-head" }, deployBadge(d), " ", navLink(deploymentHref(d), h("strong", {}, d.service), " ", fromTo(d)), " ", h("span", { class: "tag", title: SHAPES[d.shape] ?? d.shape }, d.shape), " ", h("time", { datetime: d.first_seen, title }, age(first))),
    d.reason ? h("p", { class: "reason" }, d.reason) : null,
    h(
      "p",
      { class: "muted links" },
      d.namespace ? `namespace ${d.namespace} · ` : "",
      navLink(href("/compare", compareParams(d)), "Open in Compare"),
      " · ",
      navLink(href(`/service/${encodeURIComponent(d.service)}`), `${d.service} →`),
    ),
  );
}

/** The timeline of deployments across services, newest first. */
export async function renderDeployments(main: HTMLElement, ctx: PageContext) {
  const p = params();
  const service = p.get("service") ?? "";
  document.title = "Deployments · spanwatch";
  const filter = h("input", { type: "search", placeholder: "Service", "aria-label": "Service", value: service });
  const form = h(
    "form",
    {
      class: "controls",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        setParams({ service: filter.value.trim() || null }, true);
        ctx.rerender();
      },
    },
    filter,
    h("button", { type: "submit" }, "Filter"),
  );
  const list = h("ol", { class: "timeline", "aria-label": "Deployments, newest first" });
  const status = h("p", { class: "muted", role: "status" }, "Loading…");
  clear(
    main,
    h("div", { class: "page-head" }, h("h1", {}, "Deployments"), form),
    h(
      "p",
      { class: "muted" },
      "Every new ",
      h("code", {}, "service.version"),
      " a service starts serving is a deployment. The server compares it with the version it replaces, with the same statistics as ",
      h("code", {}, "spanwatch gate"),
      ": side by side during a canary, before and after for a rolling update or a switch.",
    ),
    status,
    list,
  );
  const { events, withoutVersion } = await deployments(ctx, { service: service || undefined, limit: 200 });
  if (withoutVersion.length) {
    status.after(
      h(
        "p",
        { class: "warn-note", role: "note" },
        `No deployments can be seen for ${withoutVersion.join(", ")}: ${withoutVersion.length === 1 ? "its spans carry" : "their spans carry"} no service.version resource attribute. Set it in the SDK (OTEL_RESOURCE_ATTRIBUTES=service.version=…) to have every new version judged.`,
      ),
    );
  }
  if (!events.length) {
    status.textContent = service
      ? `No deployments of ${service} yet.`
      : "No deployments yet. A deployment is recorded when a service starts serving a new service.version.";
    return;
  }
  const decided = events.filter((d) => d.state === "decided");
  const regressions = decided.filter((d) => d.verdict === "regression").length;
  status.textContent = `${events.length} deployment${events.length === 1 ? "" : "s"}: ${decided.length} decided (${regressions} regression${regressions === 1 ? "" : "s"}), ${events.length - decided.length} still watched.`;
  for (const d of events) list.appendChild(eventRow(d));
  // Watched events are decided within minutes: look again while any is open.
  if (events.some((d) => d.state === "watching")) {
    const timer = setTimeout(() => ctx.rerender(), 15000);
    return () => clearTimeout(timer);
  }
}

/** One deployment: what it replaced, how it rolled out, the verdict and the gate's report. */
export async function renderDeployment(main: HTMLElement, ctx: PageContext, id: string) {
  document.title = "Deployment · spanwatch";
  const d = await deployment(ctx, id);
  document.title = `${d.service} ${d.version} · Deployments · spanwatch`;
  const first = unixOf(d.first_seen);
  const decided = unixOf(d.decided_at);
  const facts: [string, Node | string][] = [
    ["Service", navLink(href(`/service/${encodeURIComponent(d.service)}`), d.service)],
    ["Versions", fromTo(d)],
    ["Rollout", SHAPES[d.shape] ?? d.shape],
    ["First seen", Number.isFinite(first) ? `${new Date(first * 1000).toLocaleString()} (${age(first)})` : d.first_seen],
  ];
  if (d.namespace) facts.splice(1, 0, ["Namespace", d.namespace]);
  if (d.environment) facts.splice(1, 0, ["Environment", d.environment]);
  if ((d.previous_versions?.length ?? 0) > 1) facts.push(["Serving when it appeared", d.previous_versions!.join(", ")]);
  facts.push(["Compared", d.mode === "before-after" ? "before/after: the previous version before its traffic fell, the new one after the rollout (time-shifted, wider thresholds)" : d.mode === "same-window" ? "side by side: both versions in the same window" : "not yet"]);
  if (d.rebuilt) facts.push(["Found", "in stored data (the deploy happened while spanwatch was not watching)"]);
  if (Number.isFinite(decided)) facts.push(["Decided", `${new Date(decided * 1000).toLocaleString()} (${Math.round(decided - first)} s after first seen)`]);
  const rep = d.report as Report | undefined;
  clear(
    main,
    h("div", { class: "page-head" }, h("h1", {}, `${d.service} ${d.version}`), h("div", { class: "controls" }, navLink(href("/deployments"), "All deployments"))),
    h("div", { class: "verdict-head" }, deployBadge(d), h("div", {}, h("p", { class: "reason" }, d.reason || (d.state === "watching" ? "Collecting data." : "")), h("p", { class: "muted" }, navLink(href("/compare", compareParams(d)), "Open in Compare")))),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    rep?.notes?.length ? h("ul", { class: "notes" }, rep.notes.map((x) => h("li", {}, x))) : null,
    rep?.results ? verdictTable(rep) : h("p", { class: "muted" }, "No report yet: the verdict's table shows here once the server has looked."),
  );
  if (d.state === "watching") {
    const timer = setTimeout(() => ctx.rerender(), 15000);
    return () => clearTimeout(timer);
  }
}
