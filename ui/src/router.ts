// The router: renders the page of the current path and hands it a context.
// Rendering again (navigation, a parameter change, a refresh) leaves the
// page shown: its signal aborts, which cancels its API requests, and its
// cleanup runs. Touches no DOM itself; the caller says how to show things.

import type { RequestContext } from "./api";

/** What a page gets from the router; it is also the context of the page's API calls. */
export interface PageContext extends RequestContext {
  /** Aborted when the page is left; API calls made with this context then reject with an AbortError. */
  readonly signal: AbortSignal;
  /** Renders the current page again (after a parameter change); nothing once the page is left. */
  rerender(): void;
  /** Shows an error in the banner; nothing once the page is left, nor for an aborted request. */
  showError(e: unknown): void;
  /** Shows an API warning above the page; nothing once the page is left. */
  onWarning(warning: string, what: string): void;
}

/** What a page's render returns: a cleanup function (charts, timers) or nothing. */
export type Cleanup = (() => void) | void;

/** A page: renders into main, returns (or resolves to) its cleanup. */
export type Page = (main: HTMLElement, ctx: PageContext) => Cleanup | Promise<Cleanup>;

export interface RouterOptions {
  /** The current path (location.pathname). */
  path(): string;
  /** The page of a path; may throw (a malformed path), which shows as the page's error. */
  resolve(path: string): Page;
  /** Readies the chrome for a render of path and returns the emptied element the page renders into. */
  begin(path: string): HTMLElement;
  /** Shows an error in the banner. */
  showError(e: unknown): void;
  /** Shows a warning above the page. */
  showWarning(text: string): void;
  /** Replaces a page that failed to render with a note and a way to retry. */
  showFailed(main: HTMLElement, retry: () => void): void;
}

export interface Router {
  /** Leaves the page shown and renders the page of the current path; resolves when it has rendered. */
  route(): Promise<void>;
}

export function createRouter(o: RouterOptions): Router {
  let leave = () => {};

  async function route(): Promise<void> {
    leave();
    const ac = new AbortController();
    const { signal } = ac;
    let cleanup: Cleanup;
    leave = () => {
      ac.abort();
      if (typeof cleanup === "function") cleanup();
      cleanup = undefined;
    };
    const ctx: PageContext = {
      signal,
      rerender: () => {
        if (!signal.aborted) void route();
      },
      showError: (e) => {
        if (!signal.aborted) o.showError(e);
      },
      onWarning: (w, what) => {
        if (!signal.aborted) o.showWarning(`${what}: ${w}`);
      },
    };
    const path = o.path();
    const main = o.begin(path);
    try {
      const c = await o.resolve(path)(main, ctx);
      // A page left while it was rendering is cleaned up as soon as it returns.
      if (signal.aborted) {
        if (typeof c === "function") c();
      } else {
        cleanup = c;
      }
    } catch (e) {
      if (signal.aborted) return;
      o.showError(e);
      o.showFailed(main, ctx.rerender);
    }
  }

  return { route };
}
