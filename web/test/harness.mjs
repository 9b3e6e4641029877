// What the browser tests share: the real `heartbeat` release binary on a port of its own with
// a temp data dir, polling, free ports, the admin API, and headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core).
//
// HEARTBEAT_BIN overrides the binary's path; CHROMIUM the browser's.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const WEB = new URL("..", import.meta.url).pathname;
const TARGET = process.env.CARGO_TARGET_DIR || join(homedir(), ".cache/heartbeat/target");
export const BINARY = process.env.HEARTBEAT_BIN || join(TARGET, "release/heartbeat");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// A desktop browser's user agent: ingest drops "HeadlessChrome" as a bot.
export const USER_AGENT =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/** Polls `check` until it returns a truthy value, failing after `ms`. */
export async function eventually(what, check, ms = 20_000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A free TCP port on loopback. */
export function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts the release binary on a free loopback port with a temp data dir and `admin` as its
 * admin token, and waits for /health; `env` and `args` are added to its environment and to its
 * `serve` flags. `stop()` ends it and removes the data dir; `log()` is what it printed.
 */
export async function startHeartbeat(admin, { env = {}, args = [] } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "heartbeat-browser-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(BINARY, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, ...args], {
    env: { ...process.env, ...env, HEARTBEAT_ADMIN_TOKEN: admin },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  await eventually("heartbeat /health", async () => (await fetch(base + "/health")).ok, 60_000);
  return {
    base,
    dataDir,
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A JSON call to Heartbeat's API with a bearer key: GET without a body, POST with one. */
export async function apiCall(base, path, body, key) {
  const response = await fetch(base + path, {
    method: body ? "POST" : "GET",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await response.json();
  assert.ok(response.ok, `${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/** Headless Chromium with the flags every browser test uses, plus `extraArgs`. */
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extraArgs,
    ],
  });
}
