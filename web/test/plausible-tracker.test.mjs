// Plausible's own tracker, pointed at Heartbeat, gives the numbers Plausible's definitions give.
//
// The tracker is Plausible's official npm package, @plausible-analytics/tracker (pinned in
// package.json), unmodified, loaded two ways by pages on a loopback static server:
// - "npm": the package's ES module file as shipped, imported by `<script type="module">`,
//   then `init({domain, endpoint})`, as an app that bundles the package does;
// - "tag": the same module bundled by esbuild into one classic script (IIFE, global
//   `Plausible`), loaded by a plain `<script src>` and started by `Plausible.init({...})`.
// Plausible's `data-domain`/`data-api` script.js is not published on npm (the package ships
// only the ES module, and no package on the registry was found to vendor it), so it is not
// exercised here.
//
// Each way drives the same four visitors (four browser contexts, each with its own user agent,
// so each is its own visitor and visit) against a site of its own on the real `heartbeat`
// binary: page views over several pages, pushState and back navigation, custom events with
// props, revenue, a non-interactive event, an outbound-link click and a file download (the
// tracker's `outboundLinks` and `fileDownloads` options), and the `engagement` events the
// tracker sends on every SPA navigation and when a page is left (with `sd`, scroll depth,
// and `e`, engaged time). Then it asks `/api/v2/query` and expects what Plausible answers for
// the same visits.
//
// The pages are served as `http://npm.test:PORT/` and `http://tag.test:PORT/` (Chromium maps
// the names to 127.0.0.1), so the tracker's localhost exclusion does not apply, and Chromium
// runs without the AutomationControlled feature, so `navigator.webdriver` is false as in a
// person's browser (the tracker ignores automated browsers).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { build } from "esbuild";
import { WEB, apiCall, eventually, freePort, launchChromium, startHeartbeat } from "./harness.mjs";

const ADMIN = "plausible-tracker-test-admin-token";
const PACKAGE = join(WEB, "node_modules/@plausible-analytics/tracker");
const MODULE_FILE = join(PACKAGE, "plausible.js");
const VARIANTS = [
  { name: "npm", domain: "npm.test" },
  { name: "tag", domain: "tag.test" },
];
// Four real browsers' user agents: one visitor each (the visitor id hashes the user agent).
const VISITORS = [
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
];
// Every page is 1800 px tall in a 900 px viewport: unscrolled, Plausible's scroll depth is 50 %.
const VIEWPORT = { width: 1280, height: 900 };

let heartbeat;
let base;
let endpoint;
let pageServer;
let pagePort;
let browser;
let iife;

function v2(domain, request) {
  return apiCall(base, "/api/v2/query", { site_id: domain, date_range: "all", ...request }, ADMIN);
}

/** A v2 breakdown by one dimension as {value: metric} (one metric) or {value: [metrics]}. */
async function breakdown(domain, request) {
  const response = await v2(domain, request);
  return Object.fromEntries(
    response.results.map((r) => [r.dimensions[0], r.metrics.length === 1 ? r.metrics[0] : r.metrics]),
  );
}

async function exported(domain) {
  const response = await fetch(`${base}/api/export?site_id=${domain}&format=ndjson`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  assert.equal(response.status, 200);
  return (await response.text()).split("\n").filter(Boolean).map((line) => JSON.parse(line));
}

/** The sum of a Prometheus counter of Heartbeat's (all label sets). */
async function counter(name) {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name + " ") || line.startsWith(name + "{")) sum += Number(line.split(" ").pop());
  }
  return sum;
}

/** Events Heartbeat acknowledged (all sites, all routes). */
const acceptedEvents = () => counter("heartbeat_ingest_events_accepted_total");
/** Events the processor has been through: stored, or dropped (a duplicate, an unknown site). */
const processedEvents = async () =>
  (await counter("heartbeat_processor_events_stored_total")) + (await counter("heartbeat_processor_events_dropped_total"));

/** How the page loads the tracker: the package's ES module, or the classic script bundle. */
function trackerSnippet(variant) {
  const config = `{domain: "${variant.domain}", endpoint: "${endpoint}", outboundLinks: true, fileDownloads: true}`;
  if (variant.name === "npm") {
    return `<script type="module">
import { init } from "/tracker/plausible.js";
init(${config});
</script>`;
  }
  return `<script src="/tracker/plausible.iife.js"></script>
<script>Plausible.init(${config});</script>`;
}

/** The site's page: SPA links (pushState), an outbound link and a download (default prevented:
 * the browser stays), a page taller than the viewport. */
function sitePage(variant, path) {
  return `<!doctype html><html><head><title>${path}</title>
<style>html, body { margin: 0 } main { height: 1800px; overflow: hidden }</style>
${trackerSnippet(variant)}
</head><body><main>
<h1>${path}</h1>
<a id="home" href="/" onclick="event.preventDefault(); history.pushState({}, '', '/')">Home</a>
<a id="pricing" href="/pricing" onclick="event.preventDefault(); history.pushState({}, '', '/pricing')">Pricing</a>
<a id="docs" href="/docs" onclick="event.preventDefault(); history.pushState({}, '', '/docs')">Docs</a>
<a id="out" href="http://outside.example/offer" onclick="event.preventDefault()">Partner</a>
<a id="pdf" href="/files/report.pdf" onclick="event.preventDefault()">Report</a>
</main></body></html>`;
}

/**
 * A page of its own browser context (one visitor) that records every request the tracker
 * makes to Heartbeat while it is open, and waits for them. Requests sent as the page closes
 * (the leaving `engagement`, `fetch` with keepalive) outlive the page, not its context (the
 * browser's network session), as in a browser whose tab is closed: contexts are closed only
 * once Heartbeat has acknowledged everything.
 */
async function visitor(userAgent) {
  const context = await browser.newContext({ userAgent, viewport: VIEWPORT });
  const page = await context.newPage();
  const sent = [];
  page.on("console", (m) => {
    if (m.text().startsWith("Ignoring Event")) sent.push({ console: m.text() });
  });
  const responses = [];
  page.on("response", (r) => {
    if (r.url() === endpoint) responses.push({ status: r.status(), body: JSON.parse(r.request().postData()) });
  });
  return {
    page,
    responses,
    sent, // the tracker's "Ignoring Event" warnings
    /** Runs `action` and waits for the tracker's request named `name` it causes (answered). */
    async expect(name, action, path) {
      const seen = page.waitForResponse((r) => {
        if (r.url() !== endpoint) return false;
        const body = JSON.parse(r.request().postData());
        return body.n === name && (path === undefined || new URL(body.u).pathname === path);
      }, { timeout: 10_000 });
      await action();
      const response = await seen;
      assert.equal(response.status(), 202, `${name} answered ${response.status()}`);
      return JSON.parse(response.request().postData());
    },
    context,
    /** Leaves: closes the tab. */
    async leave() {
      await page.close();
    },
  };
}

/**
 * The four visits, the same for both ways of loading the tracker. Returns the engagement
 * payloads seen while pages were open and how many requests the tracker made in all.
 *
 * 1. Lands on /, clicks to /pricing and /docs (pushState), goes back to /pricing (popstate),
 *    signs up with a plan and 29.99 EUR of revenue, clicks an outbound link and a PDF, leaves.
 * 2. Lands on /pricing, scrolls to the bottom, leaves: a bounce that read the whole page.
 * 3. Lands on /docs, a non-interactive custom event (`interactive: false`), leaves: a bounce.
 * 4. Lands on /, signs up with another plan (no revenue), leaves.
 */
async function driveVisits(variant) {
  const origin = `http://${variant.domain}:${pagePort}`;
  const engagements = [];
  let requests = 0;

  const one = await visitor(VISITORS[0]);
  const first = await one.expect("pageview", () => one.page.goto(origin + "/"));
  assert.equal(first.d, variant.domain);
  assert.equal(await one.page.evaluate(() => navigator.webdriver), false);
  // Each SPA navigation sends the engagement of the page left, then the new page's view.
  for (const [link, left, to] of [["#pricing", "/", "/pricing"], ["#docs", "/pricing", "/docs"]]) {
    const engagement = one.expect("engagement", () => {}, left);
    await one.expect("pageview", () => one.page.click(link), to);
    engagements.push(await engagement);
  }
  const backEngagement = one.expect("engagement", () => {}, "/docs");
  await one.expect("pageview", () => one.page.goBack(), "/pricing");
  engagements.push(await backEngagement);
  const signup = await one.expect("Signup", () =>
    one.page.evaluate(() => window.plausible("Signup", { props: { plan: "pro" }, revenue: { amount: 29.99, currency: "EUR" } })),
  );
  assert.deepEqual(signup.$, { amount: 29.99, currency: "EUR" });
  const outbound = await one.expect("Outbound Link: Click", () => one.page.click("#out"));
  assert.deepEqual(outbound.p, { url: "http://outside.example/offer" });
  const download = await one.expect("File Download", () => one.page.click("#pdf"));
  assert.deepEqual(download.p, { url: `${origin}/files/report.pdf` });
  requests += one.responses.length;
  await one.leave();

  const two = await visitor(VISITORS[1]);
  await two.expect("pageview", () => two.page.goto(origin + "/pricing"));
  await two.page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
  await eventually("the scroll", () => two.page.evaluate(() => window.scrollY >= 900));
  // One more scroll event once the page is at the bottom, and time for the tracker's
  // handler: on a busy machine 200 ms after the scroll were once not enough (it sent 50).
  await two.page.evaluate(() => document.dispatchEvent(new Event("scroll")));
  await two.page.waitForTimeout(1000);
  requests += two.responses.length;
  await two.leave();

  const three = await visitor(VISITORS[2]);
  await three.expect("pageview", () => three.page.goto(origin + "/docs"));
  const autoplay = await three.expect("Autoplay", () =>
    three.page.evaluate(() => window.plausible("Autoplay", { interactive: false })),
  );
  assert.equal(autoplay.i, false);
  requests += three.responses.length;
  await three.leave();

  const four = await visitor(VISITORS[3]);
  await four.expect("pageview", () => four.page.goto(origin + "/"));
  await four.expect("Signup", () => four.page.evaluate(() => window.plausible("Signup", { props: { plan: "free" } })));
  requests += four.responses.length;
  await four.leave();

  for (const v of [one, two, three, four]) {
    for (const r of v.responses) assert.equal(r.status, 202, JSON.stringify(r));
    assert.deepEqual(v.sent, [], "the tracker ignored nothing");
  }
  // Closing each of the four pages sends one more engagement.
  return { engagements, requests: requests + 4, contexts: [one, two, three, four].map((v) => v.context) };
}

describe("Plausible's tracker (@plausible-analytics/tracker) against Heartbeat", () => {
  before(async () => {
    heartbeat = await startHeartbeat(ADMIN);
    base = heartbeat.base;
    endpoint = `${base}/api/event`;
    for (const v of VARIANTS) {
      await apiCall(base, "/api/site/create", { name: v.name, domain: v.domain, timezone: "UTC" }, ADMIN);
    }
    const bundled = await build({
      entryPoints: [MODULE_FILE],
      bundle: true,
      format: "iife",
      globalName: "Plausible",
      write: false,
      logLevel: "silent",
    });
    iife = bundled.outputFiles[0].text;
    const module = readFileSync(MODULE_FILE);

    pagePort = await freePort();
    pageServer = createServer((request, response) => {
      const host = (request.headers.host || "").split(":")[0];
      const variant = VARIANTS.find((v) => v.domain === host);
      const path = new URL(request.url, "http://x").pathname;
      if (path === "/tracker/plausible.js" || path === "/tracker/plausible.iife.js") {
        response.setHeader("content-type", "text/javascript");
        return response.end(path.endsWith(".iife.js") ? iife : module);
      }
      if (!variant || path === "/favicon.ico") {
        response.statusCode = 404;
        return response.end();
      }
      response.setHeader("content-type", "text/html; charset=utf-8");
      response.end(sitePage(variant, path));
    });
    await new Promise((r) => pageServer.listen(pagePort, "127.0.0.1", r));

    browser = await launchChromium([
      `--host-resolver-rules=${VARIANTS.map((v) => `MAP ${v.domain} 127.0.0.1`).join(", ")}`,
      "--disable-blink-features=AutomationControlled",
    ]);
  });

  after(async () => {
    await browser?.close();
    pageServer?.close();
    await heartbeat?.stop();
  });

  for (const variant of VARIANTS) {
    const { domain } = variant;

    describe(`loaded as ${variant.name === "npm" ? "the npm package's ES module" : "a classic script tag (the package bundled)"}`, () => {
      let drive;

      test("the tracker's requests are all accepted, the leaving engagements too", async () => {
        const before = await acceptedEvents();
        const processedBefore = await processedEvents();
        drive = await driveVisits(variant);
        // The engagements of visit 1's SPA navigations: the page left, its scroll depth (none
        // of them scrolled: 50 %) and engaged milliseconds.
        assert.deepEqual(drive.engagements.map((e) => [new URL(e.u).pathname, e.sd]), [["/", 50], ["/pricing", 50], ["/docs", 50]]);
        for (const e of drive.engagements) assert.ok(Number.isInteger(e.e) && e.e >= 0, JSON.stringify(e));
        // 7 page views, 5 custom events, 3 engagements on SPA navigations, 4 on leaving.
        assert.equal(drive.requests, 19);
        let accepted;
        await eventually(`Heartbeat acknowledging ${drive.requests} events`, async () => {
          accepted = (await acceptedEvents()) - before;
          if (accepted !== drive.requests) throw new Error(`${accepted} acknowledged`);
          return true;
        });
        await new Promise((r) => setTimeout(r, 500));
        assert.equal((await acceptedEvents()) - before, drive.requests, "no request the tracker did not make");
        // The processor runs behind the acknowledgement: wait until it has been through them.
        await eventually("the processor through the events", async () => (await processedEvents()) - processedBefore === drive.requests);
        for (const context of drive.contexts) await context.close();
      });

      test("visitors, visits, page views and views per visit", async () => {
        const r = await v2(domain, { metrics: ["visitors", "visits", "pageviews", "views_per_visit"] });
        assert.deepEqual(r.results[0].metrics, [4, 4, 7, 1.75]);
      });

      test("pages, entry pages and exit pages", async () => {
        assert.deepEqual(
          await breakdown(domain, { metrics: ["visitors", "pageviews"], dimensions: ["event:page"] }),
          { "/": [2, 2], "/pricing": [2, 3], "/docs": [2, 2] },
        );
        assert.deepEqual(await breakdown(domain, { metrics: ["visits"], dimensions: ["visit:entry_page"] }), {
          "/": 2,
          "/pricing": 1,
          "/docs": 1,
        });
        assert.deepEqual(await breakdown(domain, { metrics: ["visits"], dimensions: ["visit:exit_page"] }), {
          "/pricing": 2,
          "/docs": 1,
          "/": 1,
        });
      });

      test("custom events, outbound links and file downloads by name, with their props", async () => {
        const names = ["Signup", "Outbound Link: Click", "File Download", "Autoplay"];
        assert.deepEqual(
          await breakdown(domain, { metrics: ["visitors", "events"], dimensions: ["event:name"], filters: [["is", "event:name", names]] }),
          { Signup: [2, 2], "Outbound Link: Click": [1, 1], "File Download": [1, 1], Autoplay: [1, 1] },
        );
        assert.deepEqual(
          await breakdown(domain, { metrics: ["events"], dimensions: ["event:props:plan"], filters: [["is", "event:name", ["Signup"]]] }),
          { pro: 1, free: 1 },
        );
        assert.deepEqual(
          await breakdown(domain, {
            metrics: ["events"],
            dimensions: ["event:props:url"],
            filters: [["is", "event:name", ["Outbound Link: Click", "File Download"]]],
          }),
          { "http://outside.example/offer": 1, [`http://${domain}:${pagePort}/files/report.pdf`]: 1 },
        );
      });

      test("revenue and the non-interactive flag are stored as sent", async () => {
        const events = await exported(domain);
        const signups = events
          .filter((e) => e.name === "Signup")
          .map((e) => [e.props.plan, e.revenue_micros, e.revenue_currency])
          .sort();
        assert.deepEqual(signups, [["free", null, null], ["pro", 29_990_000, "EUR"]]);
        assert.deepEqual(events.filter((e) => e.name === "Autoplay").map((e) => e.interactive), [false]);
      });

      // Plausible's engagement events: not custom events (not in `events`, not in the
      // `event:name` breakdown), and they do not make a visit non-bouncing.
      test("engagement events are not events and do not end a bounce", async () => {
        const r = await v2(domain, { metrics: ["events", "bounce_rate"] });
        // 7 page views + 5 custom events; visits 2 and 3 bounced (one view each, only a
        // non-interactive event and engagements besides): 2 of 4.
        assert.deepEqual(r.results[0].metrics, [12, 50]);
        assert.deepEqual(await breakdown(domain, { metrics: ["events"], dimensions: ["event:name"] }), {
          pageview: 7,
          Signup: 2,
          "Outbound Link: Click": 1,
          "File Download": 1,
          Autoplay: 1,
        });
      });

      // Plausible's scroll_depth: per page, each visitor's deepest scroll (`sd` of its
      // engagements), averaged. /pricing: visitor 1 never scrolled (50), visitor 2 read to
      // the bottom (100).
      test("engagements give each page's scroll depth", async () => {
        assert.deepEqual(await breakdown(domain, { metrics: ["scroll_depth"], dimensions: ["event:page"] }), {
          "/": 50,
          "/pricing": 75,
          "/docs": 50,
        });
      });
    });
  }
});
