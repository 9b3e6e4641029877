// Builds heartbeat.js: one minified IIFE in dist/js/, and fails when it grows past the
// product's budget of 1.5 KB gzipped.
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const OUTFILE = "dist/js/heartbeat.js";
const BUDGET_GZIP_BYTES = 1536;

await build({
  entryPoints: ["tracker/heartbeat.ts"],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2017",
  outfile: OUTFILE,
  legalComments: "none",
});
const bytes = readFileSync(OUTFILE);
const gzipped = gzipSync(bytes, { level: 9 }).length;
console.log(`${OUTFILE}: ${bytes.length} bytes, ${gzipped} bytes gzipped (budget ${BUDGET_GZIP_BYTES})`);
if (gzipped > BUDGET_GZIP_BYTES) {
  console.error(`heartbeat.js is over its budget of ${BUDGET_GZIP_BYTES} bytes gzipped`);
  process.exit(1);
}
