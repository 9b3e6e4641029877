// The dashboard's build: dashboard/ -> dist/ (index.html plus content-hashed bundles in
// dist/assets/), which crates/server/build.rs embeds. The tracker is built by
// build-tracker.mjs into dist/js/ after this (this build empties dist/ first).
import { defineConfig } from "vite";

export default defineConfig({
  root: "dashboard",
  base: "/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "../dist",
    emptyOutDir: true,
    target: "es2020",
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
  },
});
