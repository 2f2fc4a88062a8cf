// Replaces the default export of worker-build's unminified bundle (edge-worker/build/index.js)
// with a plain module handler object: `{ fetch(request, env, ctx) }`, which calls the Wasm
// `fetch` export directly and keeps the shim's re-initialisation after a Wasm trap
// (checkReinitialize before, handleMaybeCritical on a throw). See scripts/build-worker.sh.
//
// Fails (exit 1) if the bundle does not have the shape this expects, so that a new
// worker-build cannot silently ship its class entry again: scripts/build-worker.sh stops there.
import { readFileSync, writeFileSync } from "node:fs";

const path = process.argv[2];
const src = readFileSync(path, "utf8");

const call = /Entrypoint\.prototype\.fetch = function \w*\((\w+)\) \{\s*return (\w+)\.call\(this, \1, this\.env, this\.ctx\);\s*\};/;
const found = src.match(call);
const exported = /^\s*(\w+) as default\b/m;
const dflt = src.match(exported);
for (const name of ["checkReinitialize", "handleMaybeCritical"]) {
  if (!src.includes(`function ${name}(`)) fail(`no function ${name}`);
}
if (!found) fail("no `Entrypoint.prototype.fetch` calling the Wasm fetch export");
if (!dflt) fail("no default export");

const wasmFetch = found[2];
const handler = `
// scripts/worker-entry.mjs: the module handler object that replaces the class entry.
var anteroomHandler = {
  fetch(request, env, ctx) {
    checkReinitialize();
    try {
      return ${wasmFetch}(request, env, ctx);
    } catch (e) {
      handleMaybeCritical(e);
      throw e;
    }
  }
};
`;
const exportAt = src.lastIndexOf("export {");
const out =
  src.slice(0, exportAt) +
  handler +
  src.slice(exportAt).replace(exported, (line) => line.replace(dflt[1], "anteroomHandler"));
writeFileSync(path, out);

function fail(why) {
  console.error(`worker-entry: unexpected bundle shape in ${path}: ${why}`);
  process.exit(1);
}
