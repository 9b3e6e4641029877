// Goals on the dashboard, in headless Chromium against the real binary: a site with a
// custom-event goal and a page goal gets four people's events through seed 003's batch
// endpoint; the Goals panel lists each goal with its converted visitors, events and
// conversion rate, and clicking a goal filters the whole view by it (in the URL), the top
// stats then showing the conversion rate.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { apiCall, eventually, launchChromium, startHeartbeat } from "./harness.mjs";

const ADMIN = "goals-test-admin-token";
const DOMAIN = "goals.test";

describe("goals on the dashboard", () => {
  let heartbeat;
  let browser;
  before(async () => {
    heartbeat = await startHeartbeat(ADMIN);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await heartbeat?.stop();
  });

  test("the Goals panel counts conversions and filters by a goal", async () => {
    const base = heartbeat.base;
    const site = await apiCall(base, "/api/site/create", { name: DOMAIN, domain: DOMAIN, timezone: "Etc/UTC" }, ADMIN);
    for (const goal of [
      { goal_type: "event", event_name: "Signup" },
      { goal_type: "page", page_path: "/pricing" },
    ]) {
      await apiCall(base, `/api/sites/${DOMAIN}/goals`, goal, ADMIN);
    }
    // Four people: u1 sees pricing and signs up, u2 sees pricing, u3 the home page, u4 the
    // home page and signs up. Signup: 2 of 4 (50 %); Visit /pricing: 2 of 4 (50 %).
    const at = new Date(Date.now() - 60_000).toISOString();
    const event = (userId, eventName, pageUrl) => ({ userId, eventName, timestamp: at, properties: { pageUrl } });
    const batch = [
      event("u1", "page_view", "/pricing"),
      event("u1", "Signup", "/pricing"),
      event("u2", "page_view", "/pricing"),
      event("u3", "page_view", "/"),
      event("u4", "page_view", "/"),
      event("u4", "Signup", "/"),
    ];
    const sent = await fetch(`${base}/api/v1/events`, {
      method: "POST",
      headers: { "x-api-key": site.api_key, "content-type": "application/json" },
      body: JSON.stringify(batch),
    });
    assert.equal(sent.status, 202, await sent.text());
    await eventually("the events stored", async () => {
      const answer = await apiCall(base, "/api/v2/query", { site_id: DOMAIN, metrics: ["events"], date_range: "day" }, ADMIN);
      return answer.results[0]?.metrics[0] === batch.length;
    });

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/?site=${DOMAIN}&period=day`);
    await page.fill("input[name=token]", ADMIN);
    await page.click("[data-testid=key-submit]");
    const goalRow = (name) => `[data-panel="Goals"] li[data-dimension="event:goal"][data-value="${name}"]`;
    await page.waitForSelector(`${goalRow("Signup")}[data-metric-value="2"]`);
    await page.waitForSelector(`${goalRow("Visit /pricing")}[data-metric-value="2"]`);
    const figures = await page.$$eval(`${goalRow("Signup")} .num`, (cells) => cells.map((c) => c.textContent));
    assert.deepEqual(figures, ["2", "2", "50%"], "visitors, events and conversion rate of Signup");
    await page.screenshot({ path: new URL("../test-artifacts/goals.png", import.meta.url).pathname, fullPage: true });

    await page.click(goalRow("Signup"));
    await page.waitForSelector("[data-testid=top-stats] [data-metric=conversion_rate][data-value='50']");
    assert.match(decodeURIComponent(page.url()), /event:goal\|Signup/);
    await page.waitForSelector("[data-testid=top-stats] [data-metric=visitors][data-value='2']");
    await context.close();
  });
});
