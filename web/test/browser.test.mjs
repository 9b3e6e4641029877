// Browser tests in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
// the real `heartbeat` binary on a port of its own and a temp data dir, a test page on
// another loopback port that embeds the tracker, and the dashboard the binary serves.
//
// Checks: the tracker records page views, single-page-app navigations and custom events (and
// nothing while opted out); they show on the dashboard; the dashboard's figures equal the
// API's for the same range; clicking a row filters; the live feed shows a new event within
// seconds. Saves screenshots (desktop, phone, dark) and measurements.json (tracker gzipped
// bytes, dashboard first-load transfer bytes) in web/test-artifacts/.
//
// Needs `npm run build` and the release binary: scripts/test does both. HEARTBEAT_BIN
// overrides the binary's path; CHROMIUM the browser's.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { USER_AGENT, WEB, apiCall, eventually, freePort, launchChromium, startHeartbeat } from "./harness.mjs";

const ARTIFACTS = join(WEB, "test-artifacts");
const ADMIN = "browser-test-admin-token";
const DOMAIN = "shop.test";
const TOP_METRICS = ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"];

let heartbeat;
let base;
let pageServer;
let pageBase;
let browser;
let context;
let siteKey;

function api(path, body, key = ADMIN) {
  return apiCall(base, path, body, key);
}

function v2(request) {
  return api("/api/v2/query", { site_id: DOMAIN, ...request }, siteKey);
}

async function storedEvents() {
  const response = await v2({ metrics: ["events"], date_range: "all" });
  return response.results[0]?.metrics[0] ?? 0;
}

/** The test site: a page with the tracker's snippet, SPA links and a custom event button. */
function trackerPage() {
  return `<!doctype html><html><head><title>Shop</title>
<script defer data-domain="${DOMAIN}" data-track-localhost data-outbound-links data-file-downloads src="${base}/js/heartbeat.js"></script>
</head><body>
<h1>Shop</h1>
<a id="pricing" href="/pricing" onclick="event.preventDefault(); history.pushState({}, '', '/pricing')">Pricing</a>
<a id="docs" href="/docs" onclick="event.preventDefault(); history.pushState({}, '', '/docs')">Docs</a>
<a id="out" href="http://outside.example/offer" onclick="event.preventDefault()">Partner</a>
<a id="pdf" href="/files/report.pdf" onclick="event.preventDefault()">Report</a>
<a id="internal" href="/about" onclick="event.preventDefault()">About</a>
<button id="signup" onclick="Heartbeat.track('Signup', {props: {plan: 'pro'}, revenue: {amount: 29, currency: 'EUR'}})">Sign up</button>
</body></html>`;
}

/** Seed 000's way in: Heartbeat.init with a domain and an endpoint. */
function initPage() {
  return `<!doctype html><html><head><title>Init</title>
<script src="${base}/heartbeat.js"></script>
<script>Heartbeat.init({domain: "${DOMAIN}", endpoint: "${base}/api/event", trackLocalhost: true});</script>
</head><body><h1>Init</h1></body></html>`;
}

/** The original Heartbeat's (seed 000) script tag with only `src` changed: the site is named
 * by `client-domain` (plus `data-track-localhost`, as this test page is on loopback). */
function originalTagPage() {
  return `<!doctype html><html><head><title>Original</title>
<script src="${base}/heartbeat.js" client-domain="orig.test" data-track-localhost></script>
</head><body><h1>Original</h1></body></html>`;
}

/** Hash-based routing: `#/a` and `#/b` are pages. */
function hashPage() {
  return `<!doctype html><html><head><title>Hash app</title>
<script defer data-domain="${DOMAIN}" data-hash data-track-localhost src="${base}/js/heartbeat.js"></script>
</head><body><a id="b" href="#/b">B</a></body></html>`;
}

describe("tracker and dashboard in headless Chromium", () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    heartbeat = await startHeartbeat(ADMIN);
    base = heartbeat.base;
    const created = await api("/api/site/create", { name: "Shop", domain: DOMAIN, timezone: "UTC" });
    siteKey = created.api_key;

    const pagePort = await freePort();
    pageBase = `http://127.0.0.1:${pagePort}`;
    pageServer = createServer((request, response) => {
      response.setHeader("content-type", "text/html; charset=utf-8");
      const url = request.url;
      response.end(
        url.startsWith("/init") ? initPage() : url.startsWith("/hash") ? hashPage() : url.startsWith("/original") ? originalTagPage() : trackerPage(),
      );
    });
    await new Promise((r) => pageServer.listen(pagePort, "127.0.0.1", r));

    browser = await launchChromium();
    context = await browser.newContext({ userAgent: USER_AGENT, viewport: { width: 1280, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    pageServer?.close();
    await heartbeat?.stop();
  });

  test("tracker is under 1.5 KB gzipped", () => {
    const bytes = readFileSync(join(WEB, "dist/js/heartbeat.js"));
    const gzipped = gzipSync(bytes, { level: 9 }).length;
    assert.ok(gzipped < 1536, `heartbeat.js is ${gzipped} bytes gzipped`);
  });

  test("tracker records page views, SPA navigations and a custom event", async () => {
    const page = await context.newPage();
    await page.goto(pageBase + "/");
    await eventually("the first page view", async () => (await storedEvents()) === 1);
    await page.click("#pricing");
    await page.click("#docs");
    // Back to /pricing through popstate; the same page twice in a row is one view.
    await page.goBack();
    await page.evaluate(() => history.pushState({}, "", "/pricing"));
    await page.click("#signup");
    await eventually("5 events", async () => (await storedEvents()) === 5);

    // Opted out: nothing is sent. Then opted in again, a later event arrives alone.
    await page.evaluate(() => localStorage.setItem("heartbeat_ignore", "true"));
    await page.reload();
    await page.evaluate(() => Heartbeat.track("Ignored"));
    await page.evaluate(() => localStorage.removeItem("heartbeat_ignore"));
    await page.evaluate(() => Heartbeat.track("Back", { props: { from: "opt-out" } }));
    await eventually("the event after opting in again", async () => (await storedEvents()) >= 6);

    const init = await context.newPage();
    await init.goto(pageBase + "/init.html");
    await eventually("the Heartbeat.init page view", async () => (await storedEvents()) >= 7);
    await init.close();
    assert.equal(await storedEvents(), 7, "no event while opted out");

    // Opt-in link tracking: an outbound link and a file download; an internal link is neither.
    await page.click("#internal");
    await page.click("#out");
    await page.click("#pdf");
    await eventually("the link events", async () => (await storedEvents()) >= 9);
    const links = await v2({ metrics: ["events"], date_range: "all", dimensions: ["event:name", "event:props:url"], filters: [["is_not", "event:name", ["pageview"]], ["contains", "event:name", ["Link", "Download"]]] });
    assert.deepEqual(
      links.results.map((r) => r.dimensions).sort(),
      [["File Download", `${pageBase}/files/report.pdf`], ["Outbound Link: Click", "http://outside.example/offer"]],
    );

    // Hash routing as an option: each hash is a page.
    const hash = await context.newPage();
    await hash.goto(pageBase + "/hash.html#/a");
    await hash.click("#b");
    await eventually("the hash-routed page views", async () => (await storedEvents()) >= 11);
    await hash.close();

    const pages = await v2({ metrics: ["pageviews"], date_range: "all", dimensions: ["event:page"], order_by: [["pageviews", "desc"]] });
    const byPage = Object.fromEntries(pages.results.map((r) => [r.dimensions[0], r.metrics[0]]));
    assert.deepEqual(byPage, { "/": 1, "/pricing": 2, "/docs": 1, "/init.html": 1, "/hash.html#/a": 1, "/hash.html#/b": 1 });
    const events = await v2({ metrics: ["events"], date_range: "all", dimensions: ["event:name"], filters: [["is_not", "event:name", ["pageview"]]] });
    const byName = Object.fromEntries(events.results.map((r) => [r.dimensions[0], r.metrics[0]]));
    assert.deepEqual(byName, { Signup: 1, Back: 1, "Outbound Link: Click": 1, "File Download": 1 });
    const plan = await v2({ metrics: ["events"], date_range: "all", dimensions: ["event:props:plan"], filters: [["is", "event:name", ["Signup"]]] });
    assert.deepEqual(plan.results.map((r) => r.dimensions[0]), ["pro"]);
    await page.close();
  });

  let dashboard;

  test("dashboard signs in and shows the API's figures for the same range", async () => {
    dashboard = await context.newPage();
    await dashboard.goto(base + "/?period=day");
    await dashboard.fill("input[name=token]", "not-a-key");
    await dashboard.click("[data-testid=key-submit]");
    await dashboard.waitForSelector("[data-testid=sign-in-error]");
    await dashboard.fill("input[name=token]", ADMIN);
    await dashboard.click("[data-testid=key-submit]");
    await dashboard.waitForSelector("[data-testid=top-stats] [data-metric=visitors][data-value]:not([data-value=''])");

    const api = await v2({ metrics: TOP_METRICS, date_range: "day", include: { comparisons: { mode: "previous_period" } } });
    for (const [i, metric] of TOP_METRICS.entries()) {
      const shown = await dashboard.getAttribute(`[data-metric=${metric}]`, "data-value");
      assert.equal(Number(shown), api.results[0].metrics[i], `${metric} on the dashboard`);
    }
    const pages = await v2({ metrics: ["visitors", "pageviews"], date_range: "day", dimensions: ["event:page"], order_by: [["visitors", "desc"]], pagination: { limit: 10 } });
    const panel = '[data-panel="Pages"] li[data-dimension="event:page"]';
    await dashboard.waitForSelector(panel);
    const rows = await dashboard.$$eval(panel, (items) => items.map((li) => [li.dataset.value, Number(li.dataset.metricValue)]));
    assert.deepEqual(
      Object.fromEntries(rows),
      // Rows whose every figure is 0 are not shown.
      Object.fromEntries(pages.results.filter((r) => r.metrics.some((m) => m !== 0)).map((r) => [r.dimensions[0], r.metrics[0]])),
    );
    await dashboard.waitForSelector('[data-panel="Custom events"] li[data-value="Signup"]');
    assert.match(dashboard.url(), /site=shop\.test/);
    assert.match(dashboard.url(), /period=day/);
  });

  test("clicking a row filters the whole dashboard, in the URL", async () => {
    await dashboard.click('[data-panel="Pages"] li[data-value="/pricing"]');
    await dashboard.waitForSelector('[data-testid=filters] .chip[data-value="/pricing"]');
    assert.match(decodeURIComponent(dashboard.url()), /f=event:page\|\/pricing/);
    // Under a page filter the headline has no views per visit (the API refuses it there).
    const headline = TOP_METRICS.filter((m) => m !== "views_per_visit");
    const api = await v2({ metrics: headline, date_range: "day", filters: [["is", "event:page", ["/pricing"]]] });
    const expected = api.results[0].metrics[headline.indexOf("pageviews")];
    assert.equal(await dashboard.$("[data-metric=views_per_visit]"), null);
    await eventually("filtered pageviews", async () =>
      Number(await dashboard.getAttribute("[data-metric=pageviews]", "data-value")) === expected,
    );
    const rows = await dashboard.$$eval('[data-panel="Pages"] li[data-dimension="event:page"]', (items) => items.map((li) => li.dataset.value));
    assert.deepEqual(rows, ["/pricing"]);
    // The shared link opens the same view.
    const shared = await context.newPage();
    await shared.goto(dashboard.url());
    await shared.waitForSelector('[data-testid=filters] .chip[data-value="/pricing"]');
    await eventually("the shared view's figures", async () =>
      Number(await shared.getAttribute("[data-metric=pageviews]", "data-value")) === expected,
    );
    await shared.close();
    await dashboard.click('[data-testid=filters] .chip[data-value="/pricing"] button');
    await dashboard.waitForSelector("[data-testid=filters]", { state: "detached" });
  });

  test("a custom event's row shows its properties; the range picker changes the range", async () => {
    await dashboard.click('[data-panel="Custom events"] li[data-value="Signup"]');
    const row = await dashboard.waitForSelector('[data-panel="Properties of Signup"] li[data-value="pro"]');
    assert.equal(await row.getAttribute("data-metric-value"), "1");
    await dashboard.click('[data-testid=filters] .chip[data-value="Signup"] button');
    await dashboard.waitForSelector("[data-testid=filters]", { state: "detached" });

    await dashboard.selectOption("[data-testid=period]", "30d");
    await eventually("period=30d in the URL", async () => dashboard.url().includes("period=30d"));
    const api = await v2({ metrics: TOP_METRICS, date_range: "30d" });
    await eventually("the 30-day figures", async () => {
      for (const [i, metric] of TOP_METRICS.entries()) {
        const shown = await dashboard.getAttribute(`[data-metric=${metric}]`, "data-value");
        if (Number(shown) !== api.results[0].metrics[i]) return false;
      }
      return true;
    });
    await dashboard.goBack();
    await eventually("back to today", async () => dashboard.url().includes("period=day"));
  });

  test("the live feed shows a new event within seconds", async () => {
    await dashboard.waitForSelector("[data-testid=current-visitors]:not([data-value=''])");
    const site = await context.newPage();
    await site.goto(pageBase + "/");
    const started = Date.now();
    await site.evaluate(() => Heartbeat.track("LiveCheck", { props: { at: "now" } }));
    await dashboard.waitForSelector('[data-testid=feed] li[data-name="LiveCheck"]', { timeout: 10_000 });
    const seconds = (Date.now() - started) / 1000;
    assert.ok(seconds < 10, `took ${seconds} s`);
    await eventually("current visitors", async () =>
      Number(await dashboard.getAttribute("[data-testid=current-visitors]", "data-value")) >= 1,
    );
    await site.close();
  });

  test("a site's own key signs in and sees only its site", async () => {
    await api("/api/site/create", { name: "Other", domain: "other.test", timezone: "UTC" });
    const page = await context.newPage();
    await page.goto(base + "/");
    await page.click("text=Sign out");
    await page.fill("input[name=token]", siteKey);
    await page.click("[data-testid=key-submit]");
    await page.waitForSelector("[data-testid=top-stats] [data-metric=visitors][data-value]:not([data-value=''])");
    const options = await page.$$eval("[data-testid=site] option", (items) => items.map((o) => o.value));
    assert.deepEqual(options, [DOMAIN]);
    // Back to the admin token for the pages that follow (the key is kept per browser).
    await page.click("text=Sign out");
    await page.fill("input[name=token]", ADMIN);
    await page.click("[data-testid=key-submit]");
    await page.waitForSelector("[data-testid=site]");
    const all = await page.$$eval("[data-testid=site] option", (items) => items.map((o) => o.value).sort());
    assert.deepEqual(all, ["other.test", DOMAIN].sort());
    await page.close();
  });

  test("first run: the owner's account is created, then signs in with email and password", async () => {
    const page = await context.newPage();
    await page.goto(base + "/");
    await page.click("text=Sign out");
    await page.waitForSelector("[data-testid=account-submit]:has-text('Create owner account')");
    await page.fill("input[name=email]", "owner@example.com");
    await page.fill("input[name=password]", "correct horse battery staple");
    await page.click("[data-testid=account-submit]");
    await page.waitForSelector("[data-testid=site]");
    const sites = await page.$$eval("[data-testid=site] option", (items) => items.map((o) => o.value).sort());
    assert.deepEqual(sites, ["other.test", DOMAIN].sort());
    await page.click("text=Sign out");
    await page.waitForSelector("[data-testid=account-submit]:has-text('Sign in')");
    await page.fill("input[name=email]", "owner@example.com");
    await page.fill("input[name=password]", "not the password");
    await page.click("[data-testid=account-submit]");
    await page.waitForSelector("[data-testid=account-error]");
    await page.fill("input[name=password]", "correct horse battery staple");
    await page.click("[data-testid=account-submit]");
    await page.waitForSelector("[data-testid=site]");
    // Back to the admin token for the pages that follow.
    await page.click("text=Sign out");
    await page.fill("input[name=token]", ADMIN);
    await page.click("[data-testid=key-submit]");
    await page.waitForSelector("[data-testid=site]");
    await page.close();
  });

  test("a public link shows the site read-only, after its password when it has one", async () => {
    const share = async (body) => {
      const response = await fetch(`${base}/api/sites/${DOMAIN}/share`, {
        method: "PUT",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const json = await response.json();
      assert.equal(response.status, 200, JSON.stringify(json));
      return json.share_token;
    };
    const visitor = await browser.newContext({ userAgent: USER_AGENT, viewport: { width: 1280, height: 900 } });
    const open = await share({});
    let page = await visitor.newPage();
    await page.goto(`${base}/?share=${open}`);
    await page.waitForSelector("[data-testid=top-stats] [data-metric=visitors][data-value]:not([data-value=''])");
    assert.deepEqual(await page.$$eval("[data-testid=site] option", (items) => items.map((o) => o.value)), [DOMAIN]);
    assert.equal(await page.evaluate(() => localStorage.getItem("heartbeat_token")), null);
    await page.close();

    const locked = await share({ password: "open sesame" });
    page = await visitor.newPage();
    await page.goto(`${base}/?share=${locked}`);
    await page.fill("input[name=share-password]", "wrong");
    await page.click("[data-testid=share-submit]");
    await page.waitForSelector("[data-testid=share-error]");
    await page.fill("input[name=share-password]", "open sesame");
    await page.click("[data-testid=share-submit]");
    await page.waitForSelector("[data-testid=top-stats] [data-metric=visitors][data-value]:not([data-value=''])");
    await visitor.close();
  });

  test("the original Heartbeat's script tag counts with only its src changed", async () => {
    const created = await api("/api/site/create", { name: "Original", domain: "orig.test", timezone: "UTC" });
    const page = await context.newPage();
    await page.goto(pageBase + "/original");
    await eventually("the original tag's page view", async () => {
      const r = await api("/api/v2/query", { site_id: "orig.test", metrics: ["pageviews"], date_range: "all" }, created.api_key);
      return r.results[0]?.metrics[0] === 1;
    });
    await page.close();
  });

  test("screenshots and first-load transfer size", async () => {
    // Let the chart and panels settle on the live event's refresh.
    await dashboard.waitForTimeout(6000);
    await dashboard.screenshot({ path: join(ARTIFACTS, "dashboard-desktop.png"), fullPage: true });
    await dashboard.setViewportSize({ width: 390, height: 844 });
    await dashboard.waitForTimeout(500);
    const phoneWidth = await dashboard.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(phoneWidth <= 390, `the phone layout is ${phoneWidth} px wide`);
    await dashboard.screenshot({ path: join(ARTIFACTS, "dashboard-phone.png"), fullPage: true });
    await dashboard.setViewportSize({ width: 1280, height: 900 });
    await dashboard.click("[data-testid=theme]"); // auto -> dark
    await dashboard.waitForTimeout(500);
    await dashboard.screenshot({ path: join(ARTIFACTS, "dashboard-dark.png"), fullPage: true });

    // A first load (empty cache, key already in this browser): bytes on the wire per
    // resource, as Chromium's network domain counts them (headers included).
    const fresh = await context.newPage();
    const cdp = await context.newCDPSession(fresh);
    await cdp.send("Network.enable");
    await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
    const urls = new Map();
    const sizes = [];
    cdp.on("Network.responseReceived", (e) => urls.set(e.requestId, e.response.url));
    cdp.on("Network.loadingFinished", (e) => sizes.push([urls.get(e.requestId) || "", e.encodedDataLength]));
    const view = `${base}/?site=${DOMAIN}&period=day`;
    await fresh.goto(view, { waitUntil: "networkidle" });
    await fresh.waitForSelector('[data-panel="Pages"] li');
    const assets = sizes.filter(([url]) => url === view || url.startsWith(base + "/assets/"));
    const measurements = {
      tracker_bytes: readFileSync(join(WEB, "dist/js/heartbeat.js")).length,
      tracker_gzip_bytes: gzipSync(readFileSync(join(WEB, "dist/js/heartbeat.js")), { level: 9 }).length,
      dashboard_first_load_asset_transfer_bytes: assets.reduce((sum, [, n]) => sum + n, 0),
      dashboard_first_load_total_transfer_bytes: sizes.reduce((sum, [, n]) => sum + n, 0),
      dashboard_first_load_requests: sizes.map(([url, n]) => `${n}\t${url.replace(base, "")}`),
    };
    writeFileSync(join(ARTIFACTS, "measurements.json"), JSON.stringify(measurements, null, 2) + "\n");
    console.log(JSON.stringify(measurements, null, 2));
    assert.ok(measurements.dashboard_first_load_asset_transfer_bytes < 100_000);
    await fresh.close();
  });
});
