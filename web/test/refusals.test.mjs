// A server refusing reads for a moment: with one query at a time and two waiting
// (`query.max_concurrent = 1`, `query.max_waiting = 2`), most of the dashboard's parallel
// reads are answered 503 with `Retry-After`; the dashboard sends them again after the wait
// asked and shows every panel's figures, no error.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { apiCall, eventually, launchChromium, startHeartbeat } from "./harness.mjs";

const ADMIN = "refusals-test-admin-token";
const DOMAIN = "busy.test";

/** The server's count of reads refused as busy, from `/metrics`. */
async function refusedBusy(base) {
  const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith("heartbeat_query_refused_total{") && line.includes('reason="busy"'))
    .reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
}

describe("a dashboard on a server refusing reads for a moment", () => {
  let heartbeat;
  let browser;
  before(async () => {
    heartbeat = await startHeartbeat(ADMIN, {
      env: { HEARTBEAT_QUERY_MAX_CONCURRENT: "1", HEARTBEAT_QUERY_MAX_WAITING: "2" },
    });
    browser = await launchChromium();
    const site = await apiCall(heartbeat.base, "/api/site/create", { name: DOMAIN, domain: DOMAIN, timezone: "Etc/UTC" }, ADMIN);
    const now = Date.now();
    const events = ["/", "/pricing", "/", "/docs"].map((page, i) => ({
      userId: `u${i}`,
      eventName: "page_view",
      timestamp: new Date(now - 60_000 + i * 1000).toISOString(),
      properties: { pageUrl: page },
    }));
    const sent = await fetch(`${heartbeat.base}/api/v1/events`, {
      method: "POST",
      headers: { "x-api-key": site.api_key, "content-type": "application/json" },
      body: JSON.stringify(events),
    });
    assert.equal(sent.status, 202, await sent.text());
    await eventually("the events stored", async () => {
      const answer = await apiCall(heartbeat.base, "/api/v2/query", { site_id: DOMAIN, metrics: ["pageviews"], date_range: "day" }, ADMIN);
      return answer.results[0]?.metrics[0] === 4;
    });
  });

  after(async () => {
    await browser?.close();
    await heartbeat?.stop();
  });

  test("every panel shows its figures after the reads refused are sent again", async () => {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    // Whether the dashboard's parallel reads crowd the one running and two waiting depends
    // on how fast the server answers them, so the view is loaded again until the server has
    // refused some; every load must show every panel's figures and no error.
    // The key is asked for once and kept by the browser for the loads after.
    const MAX_LOADS = 10;
    await page.goto(`${heartbeat.base}/?site=${DOMAIN}&period=day`);
    await page.fill("input[name=token]", ADMIN);
    await page.click("[data-testid=key-submit]");
    for (let load = 1; ; load++) {
      if (load > 1) await page.reload();
      await page.waitForSelector("[data-testid=top-stats] [data-metric=pageviews][data-value='4']", { timeout: 30_000 });
      await page.waitForSelector('[data-panel="Pages"] li[data-value="/pricing"]', { timeout: 30_000 });
      // Every panel answered: its rows, its empty state or an error.
      await eventually(
        "every panel answered",
        () => page.$$eval("[data-panel]", (panels) => panels.length > 0 && panels.every((p) => p.querySelector("li, .empty, .error"))),
        30_000,
      );
      assert.deepEqual(await page.$$eval(".error", (shown) => shown.map((e) => e.textContent)), [], `errors shown (load ${load})`);
      if ((await refusedBusy(heartbeat.base)) > 0) {
        break;
      }
      assert.ok(load < MAX_LOADS, `the server refused none of the dashboard's reads in ${MAX_LOADS} loads: the test proves nothing`);
    }
  });
});
