// The module structure of src/: imports form no cycle (type-only imports
// included), and every module but the entry point can be imported without
// a DOM, which it would touch if it did anything at import. `npm test`
// bundles each module of src/ into .test-build first.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const src = path.join(root, "src");

/** The bundle's entry point: the one module that acts when imported (it calls start()). */
const ENTRY = "index.ts";

/** The .ts files under dir, as paths relative to src/ with forward slashes. */
function modules(dir = src) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return modules(p);
    return e.name.endsWith(".ts") ? [path.relative(src, p).split(path.sep).join("/")] : [];
  });
}

/** The src/ modules that mod imports, as TypeScript's scanner finds them (import, import type, export from, import()). */
function importsOf(mod) {
  const text = readFileSync(path.join(src, mod), "utf8");
  const out = [];
  for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
    if (!fileName.startsWith(".")) continue; // a package (uplot)
    const base = path.posix.normalize(path.posix.join(path.posix.dirname(mod), fileName));
    const found = [base, base + ".ts", base + "/index.ts"].find((c) => c.endsWith(".ts") && existsSync(path.join(src, c)));
    if (found) out.push(found);
    else if (!/\.(css|svg)$/.test(base)) assert.fail(`${mod}: cannot resolve ${fileName}`);
  }
  return out;
}

/** The import graph of src/: module → the modules it imports. */
function graph() {
  return new Map(modules().map((m) => [m, importsOf(m)]));
}

/** A cycle of graph as [a, b, …, a], or null when there is none. */
function findCycle(g) {
  const state = new Map(); // module → "open" while on the path, "done" after
  const stack = [];
  const visit = (m) => {
    if (state.get(m) === "done") return null;
    if (state.get(m) === "open") return [...stack.slice(stack.indexOf(m)), m];
    state.set(m, "open");
    stack.push(m);
    for (const d of g.get(m) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(m, "done");
    return null;
  };
  for (const m of [...g.keys()].sort()) {
    const c = visit(m);
    if (c) return c;
  }
  return null;
}

test("findCycle finds cycles, direct and through other modules", () => {
  assert.equal(findCycle(new Map([["a", ["b"]], ["b", ["c"]], ["c", []]])), null);
  assert.equal(findCycle(new Map([["a", ["b", "c"]], ["b", ["c"]], ["c", []]])), null, "a diamond is no cycle");
  assert.deepEqual(findCycle(new Map([["a", ["b"]], ["b", ["a"]]])), ["a", "b", "a"]);
  assert.deepEqual(findCycle(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["b"]]])), ["b", "c", "b"]);
  assert.deepEqual(findCycle(new Map([["a", ["a"]]])), ["a", "a"]);
});

test("the modules of src/ import each other without a cycle", () => {
  const g = graph();
  // The scan sees the imports at all: a page imports the API and the router's types.
  assert.ok(g.get("pages/services.ts").includes("api.ts"), "pages/services.ts imports api.ts");
  assert.ok(g.get("pages/service.ts").includes("router.ts"), "pages/service.ts imports router.ts (import type)");
  assert.ok(g.get("main.ts").includes("pages/compare.ts"), "main.ts imports pages/compare.ts");
  const cycle = findCycle(g);
  assert.equal(cycle, null, `import cycle: ${cycle?.join(" → ")}`);
});

test("pages import neither main.ts nor the entry point", () => {
  for (const [m, deps] of graph()) {
    if (!m.startsWith("pages/")) continue;
    assert.ok(!deps.includes("main.ts") && !deps.includes(ENTRY), `${m} imports ${deps.join(", ")}`);
  }
});

test("importing a module has no side effects on the DOM", async () => {
  // Node has no document or window: a module that touches either at import throws.
  assert.equal(typeof globalThis.document, "undefined");
  assert.equal(typeof globalThis.window, "undefined");
  const mods = modules().filter((m) => m !== ENTRY);
  assert.ok(mods.includes("main.ts") && mods.includes("pages/service.ts"));
  for (const m of mods) {
    const built = path.join(root, ".test-build", m.replace(/\.ts$/, ".mjs"));
    await assert.doesNotReject(import(pathToFileURL(built).href), `importing ${m}`);
  }
  const main = await import(pathToFileURL(path.join(root, ".test-build", "main.mjs")).href);
  assert.deepEqual(Object.keys(main), ["start"], "main.ts exports start() only");
});
