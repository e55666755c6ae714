// Builds the UI bundle into ../internal/web/assets/dist, which `go build`
// embeds (internal/web/ui.go). `node build.mjs --watch` rebuilds on change.
import * as esbuild from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, "..", "internal", "web", "assets", "dist");
const watch = process.argv.includes("--watch");

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
for (const [from, to] of [
  ["src/index.html", "index.html"],
  ["src/favicon.svg", "favicon.svg"],
  ["node_modules/uplot/dist/uPlot.min.css", "uPlot.min.css"],
]) {
  await copyFile(path.join(here, from), path.join(out, to));
}

const options = {
  absWorkingDir: here,
  entryPoints: { app: "src/index.ts" }, // index.ts imports app.css → app.css
  bundle: true,
  format: "esm",
  target: ["es2022", "chrome110", "firefox110", "safari16"],
  outdir: out,
  entryNames: "[name]",
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  legalComments: "linked",
  logLevel: "info",
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
