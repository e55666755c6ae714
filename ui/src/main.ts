// The app's wiring: the router with its pages, the time range picker, the
// error banner, in-app links and keys. Nothing runs until start().

import { APIError } from "./api";
import { clear, h } from "./dom";
import { renderCompare } from "./pages/compare";
import { renderDeployment, renderDeployments } from "./pages/deployments";
import { renderService } from "./pages/service";
import { renderServices } from "./pages/services";
import { createRouter, Page } from "./router";
import { DEFAULT_RANGE, params, RANGES, setParams, timeRange } from "./state";

/** Shows an error in the banner box; API errors say which request failed. An aborted request is no error. */
function showError(box: HTMLElement, e: unknown) {
  if (e instanceof DOMException && e.name === "AbortError") return;
  let text: string;
  if (e instanceof APIError) {
    const kind = e.status ? `${e.errorType}, HTTP ${e.status}` : e.errorType;
    text = `${e.what}: ${e.message} (${kind})`;
  } else {
    text = e instanceof Error ? e.message : String(e);
  }
  console.error(e);
  for (const li of box.querySelectorAll("li")) if (li.dataset.text === text) return;
  let list = box.querySelector("ul");
  if (!list) {
    list = h("ul");
    clear(
      box,
      h("div", { class: "errors-head" }, h("strong", {}, "The API returned errors"), h("button", { type: "button", class: "link", onclick: () => clear(box) }, "Dismiss")),
      list,
    );
  }
  const li = h("li", {}, text);
  li.dataset.text = text;
  list.appendChild(li);
}

/** Shows an API warning (a PromQL annotation) at the top of the page element. */
function showWarning(main: HTMLElement, text: string) {
  let box = main.querySelector(".warnings");
  if (!box) {
    box = h("div", { class: "warnings", role: "status" });
    main.prepend(box);
  }
  const line = "Warning: " + text;
  if (![...box.children].some((c) => c.textContent === line)) box.appendChild(h("p", {}, line));
}

/** The page of a path. */
function resolve(path: string): Page {
  if (path === "/" || path === "/services") return renderServices;
  if (path.startsWith("/service/")) {
    const service = decodeURIComponent(path.slice("/service/".length));
    return (main, ctx) => renderService(main, ctx, service);
  }
  if (path === "/compare") return renderCompare;
  if (path === "/deployments") return renderDeployments;
  if (path.startsWith("/deployments/")) {
    const id = decodeURIComponent(path.slice("/deployments/".length));
    return (main, ctx) => renderDeployment(main, ctx, id);
  }
  return (main) => clear(main, h("h1", {}, "Not found"), h("p", {}, "No page at ", h("code", {}, path), ". ", h("a", { href: "/", "data-nav": true }, "Back to services")));
}

/** Marks the header's link to the page of path as the current one. */
function markNav(path: string) {
  for (const a of document.querySelectorAll<HTMLAnchorElement>("header nav a")) {
    const page = a.dataset.page;
    const active = (page === "services" && (path === "/" || path.startsWith("/service/"))) || (page === "compare" && path.startsWith("/compare")) || (page === "deployments" && path.startsWith("/deployments"));
    if (active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function toLocalInput(sec: number): string {
  const d = new Date(sec * 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The time range buttons, the custom range form and the refresh button, into el. */
function renderRangePicker(el: HTMLElement, rerender: () => void, report: (e: unknown) => void) {
  const tr = timeRange();
  const buttons = RANGES.map((r) =>
    h(
      "button",
      {
        type: "button",
        "aria-pressed": String(!tr.custom && tr.label === r),
        onclick: () => {
          setParams({ range: r === DEFAULT_RANGE ? null : r, from: null, to: null }, true);
          rerender();
        },
      },
      r,
    ),
  );
  const from = h("input", { type: "datetime-local", "aria-label": "From", value: toLocalInput(tr.start) });
  const to = h("input", { type: "datetime-local", "aria-label": "To", value: toLocalInput(tr.end) });
  const form = h(
    "form",
    {
      class: "custom-range",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        const f = Math.floor(new Date(from.value).getTime() / 1000);
        const t = Math.floor(new Date(to.value).getTime() / 1000);
        if (!Number.isFinite(f) || !Number.isFinite(t) || t <= f) {
          report(new Error("custom range: “to” must be after “from”"));
          return;
        }
        setParams({ range: null, from: String(f), to: String(t) }, true);
        rerender();
      },
    },
    from,
    h("span", { "aria-hidden": "true" }, "–"),
    to,
    h("button", { type: "submit", "aria-pressed": String(tr.custom) }, "Custom"),
  );
  const summary = h("summary", { class: tr.custom ? "active" : "", title: tr.custom ? `${new Date(tr.start * 1000).toLocaleString()} – ${new Date(tr.end * 1000).toLocaleString()}` : "Pick a custom range" }, "custom…");
  const details = h("details", { class: "custom" }, summary, form);
  const refresh = h("button", { type: "button", title: "Refresh (r)", "aria-label": "Refresh", onclick: () => rerender() }, "↻");
  clear(el, ...buttons, details, refresh);
}

/** Starts the app on the page's document: renders the current page and follows navigation. */
export function start() {
  const main = document.getElementById("main")!;
  const errors = document.getElementById("errors")!;
  const rangeEl = document.getElementById("range")!;
  const banner = (e: unknown) => showError(errors, e);

  const router = createRouter({
    path: () => location.pathname,
    resolve,
    begin: (path) => {
      clear(errors);
      renderRangePicker(rangeEl, rerender, banner);
      markNav(path);
      clear(main);
      return main;
    },
    showError: banner,
    showWarning: (text) => showWarning(main, text),
    showFailed: (el, retry) =>
      clear(el, h("p", { class: "muted" }, "This page could not load: the error is shown above. ", h("button", { type: "button", onclick: () => retry() }, "Retry"))),
  });

  /** Re-renders the current page (after a parameter change). */
  function rerender() {
    void router.route();
  }

  /** Navigates inside the app. */
  function navigate(url: string) {
    history.pushState(null, "", url);
    void router.route();
    main.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }

  document.addEventListener("click", (ev) => {
    const a = (ev.target as Element).closest?.("a[data-nav]") as HTMLAnchorElement | null;
    if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin) return;
    ev.preventDefault();
    // Keep the time range when the link has none of its own.
    const cur = params();
    if (!url.searchParams.has("range") && !url.searchParams.has("from")) {
      for (const k of ["range", "from", "to"]) {
        const v = cur.get(k);
        if (v !== null) url.searchParams.set(k, v);
      }
    }
    navigate(url.pathname + url.search);
  });

  document.addEventListener("keydown", (ev) => {
    const t = ev.target as HTMLElement;
    if (ev.metaKey || ev.ctrlKey || ev.altKey || t.closest("input, select, textarea, [contenteditable]")) return;
    if (ev.key === "r") rerender();
    if (ev.key === "/") {
      const f = document.querySelector<HTMLInputElement>("input[type=search]");
      if (f) {
        ev.preventDefault();
        f.focus();
      }
    }
  });

  window.addEventListener("popstate", () => void router.route());
  window.addEventListener("unhandledrejection", (ev) => banner(ev.reason));
  void router.route();
}
