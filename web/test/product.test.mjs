// The product views of the dashboard (Funnels, Retention, Paths), in headless Chromium against
// the real binary: seven people's visits over three days go in through seed 003's batch
// endpoint, a funnel is saved through the API and another through the form, and each view's
// figures are checked against counts made by hand below; the views and their settings live in
// the URL, so the back button walks back through them.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { apiCall, eventually, launchChromium, startHeartbeat } from "./harness.mjs";

const ADMIN = "product-test-admin-token";
const DOMAIN = "product.test";
const EMPTY = "empty.test";
const DAY = 86_400_000;
const artifact = (name) => new URL(`../test-artifacts/${name}`, import.meta.url).pathname;

// Day D's visits start 15 minutes ago (10 minutes before midnight when that is nearer, so that
// no visit crosses into the next day); D-1 and D-2 are the days before, all in the last 7 days.
let start = Date.now() - 15 * 60_000;
const dayD = Math.floor(start / DAY) * DAY;
if (start + 5 * 60_000 >= dayD + DAY) start = dayD + DAY - 10 * 60_000;
const dIsToday = Math.floor(Date.now() / DAY) * DAY === dayD;
const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

/** One visit's events: [seconds after the previous event, event name, page]. */
function visit(userId, t0, steps) {
  let t = t0;
  return steps.map(([gap, eventName, pageUrl]) => {
    t += gap * 1000;
    return { userId, eventName, timestamp: new Date(t).toISOString(), properties: { pageUrl } };
  });
}

// Who did what, in order (a person is the userId, followed across days):
//   D-2  u3: /
//   D-1  u1: /            u2: / -(100 s)-> /pricing            u7: /
//   D    u1: / -(30 s)-> /pricing -(60 s)-> /signup -(65 s)-> signup event
//        u2: / -(90 s)-> /pricing -> /signup
//        u3: / -(150 s)-> /pricing
//        u4: / -> /signup -> signup event
//        u5: /
//        u6: /pricing -> /signup -> signup event
const BATCH = [
  ...visit("u3", dayD - 2 * DAY + 12 * 3_600_000, [[0, "page_view", "/"]]),
  ...visit("u1", dayD - DAY + 10 * 3_600_000, [[0, "page_view", "/"]]),
  ...visit("u2", dayD - DAY + 11 * 3_600_000, [
    [0, "page_view", "/"],
    [100, "page_view", "/pricing"],
  ]),
  ...visit("u7", dayD - DAY + 12 * 3_600_000, [[0, "page_view", "/"]]),
  ...visit("u1", start, [
    [0, "page_view", "/"],
    [30, "page_view", "/pricing"],
    [60, "page_view", "/signup"],
    [65, "signup", "/signup"],
  ]),
  ...visit("u2", start, [
    [0, "page_view", "/"],
    [90, "page_view", "/pricing"],
    [60, "page_view", "/signup"],
  ]),
  ...visit("u3", start, [
    [0, "page_view", "/"],
    [150, "page_view", "/pricing"],
  ]),
  ...visit("u4", start, [
    [0, "page_view", "/"],
    [20, "page_view", "/signup"],
    [10, "signup", "/signup"],
  ]),
  ...visit("u5", start, [[0, "page_view", "/"]]),
  ...visit("u6", start, [
    [0, "page_view", "/pricing"],
    [40, "page_view", "/signup"],
    [5, "signup", "/signup"],
  ]),
];

/** The text the product view shows (its figures, an empty state or an error), for a failure's message. */
let shownText = async () => "";

/**
 * Polls `read` until its value deep-equals `expected`; on timeout, the assertion's diff and
 * what the view showed.
 */
async function settles(what, read, expected, ms = 20_000) {
  let last;
  try {
    await eventually(what, async () => {
      last = await read();
      assert.deepEqual(last, expected);
      return true;
    }, ms);
  } catch (err) {
    const shown = await shownText().catch((e) => `(unreadable: ${e.message})`);
    assert.deepEqual(last, expected, `${what}: ${err.message}\nthe view showed: ${shown}`);
  }
}

/** In the page: the contrast ratio of an element's text colour on its background (WCAG). */
function cellContrast(element) {
  const style = getComputedStyle(element);
  // Computed colours read "rgb(r, g, b)" or, from color-mix(), "color(srgb r g b)" (0 to 1).
  const rgb = (css) => {
    const n = css.match(/[\d.]+/g).map(Number);
    return css.startsWith("color(") ? n.slice(0, 3) : n.slice(0, 3).map((v) => v / 255);
  };
  const luminance = (css) => {
    const [r, g, b] = rgb(css).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [a, b] = [luminance(style.color), luminance(style.backgroundColor)].sort((x, y) => y - x);
  return { color: style.color, background: style.backgroundColor, ratio: (a + 0.05) / (b + 0.05) };
}

describe("funnels, retention and paths on the dashboard", () => {
  let heartbeat;
  let browser;
  let context;
  let page;
  let savedFunnel;
  before(async () => {
    heartbeat = await startHeartbeat(ADMIN);
    browser = await launchChromium();
    const base = heartbeat.base;
    const site = await apiCall(base, "/api/site/create", { name: DOMAIN, domain: DOMAIN, timezone: "Etc/UTC" }, ADMIN);
    await apiCall(base, "/api/site/create", { name: EMPTY, domain: EMPTY, timezone: "Etc/UTC" }, ADMIN);
    const sent = await fetch(`${base}/api/v1/events`, {
      method: "POST",
      headers: { "x-api-key": site.api_key, "content-type": "application/json" },
      body: JSON.stringify(BATCH),
    });
    assert.equal(sent.status, 202, await sent.text());
    await eventually("the events stored", async () => {
      const answer = await apiCall(base, "/api/v2/query", { site_id: DOMAIN, metrics: ["events"], date_range: "7d" }, ADMIN);
      return answer.results[0]?.metrics[0] === BATCH.length;
    });
    const saved = await apiCall(
      base,
      `/api/sites/${DOMAIN}/funnels`,
      { name: "Home to signup", steps: [{ page: "/" }, { page: "/pricing" }, { event: "signup" }] },
      ADMIN,
    );
    savedFunnel = saved.funnel;
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    // The view's text and the URL, and the server's last log lines, should a check fail.
    shownText = async () => {
      const view = await page.$eval("main", (m) => m.innerText).catch(() => "(no main)");
      return `${page.url()}\n${view}\nserver log:\n${heartbeat.log().split("\n").slice(-20).join("\n")}`;
    };
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    await heartbeat?.stop();
  });

  /** A screenshot of a product view once its requests are answered. */
  const screenshot = async (view, name) => {
    await page.waitForSelector(`[data-testid=${view}][data-loading=false]`);
    await page.screenshot({ path: artifact(name), fullPage: true });
  };

  const funnelSteps = () =>
    page.$$eval("[data-testid=funnel-chart] .funnel-step", (steps) =>
      steps.map((s) => {
        const metric = (m) => s.querySelector(`[data-metric=${m}]`)?.textContent.replace(/\s+/g, " ").trim() ?? null;
        return {
          name: s.dataset.name,
          visitors: Number(s.dataset.visitors),
          fromFirst: metric("conversion_rate"),
          fromPrevious: metric("conversion_rate_step"),
          dropoff: metric("dropoff"),
          median: metric("median_seconds_to_next"),
        };
      }),
    );

  test("the Funnels view shows a saved funnel's steps, from the URL", async () => {
    await page.goto(`${heartbeat.base}/?site=${DOMAIN}&view=funnels&period=7d`);
    await page.fill("input[name=token]", ADMIN);
    await page.click("[data-testid=key-submit]");
    // Reached "/": u1..u5 and u7 (6); then /pricing in the same visit: u1, u2, u3 (3); then the
    // signup event: u1 (1). Times to the next step at each one's best attempt (the earliest
    // among those reaching as far): u1 30 s, u2 100 s (D-1), u3 150 s: median 100 s; u1 125 s.
    await settles("the funnel's steps", funnelSteps, [
      {
        name: "Visit /",
        visitors: 6,
        fromFirst: "100% of step 1",
        fromPrevious: null,
        dropoff: "↓ 3 dropped off (50%)",
        median: "1m 40s median to next",
      },
      {
        name: "Visit /pricing",
        visitors: 3,
        fromFirst: "50% of step 1",
        fromPrevious: "50% from step 1",
        dropoff: "↓ 2 dropped off (66.7%)",
        median: "2m 5s median to next",
      },
      { name: "signup", visitors: 1, fromFirst: "16.7% of step 1", fromPrevious: "33.3% from step 2", dropoff: null, median: null },
    ]);
    assert.equal(await page.$eval("[data-testid=funnel-picker]", (s) => s.value), savedFunnel.funnel_id);
    assert.equal(await page.getAttribute("[data-view=funnels]", "aria-current"), "page");
    await screenshot("funnels", "funnel.png");

    // A breakdown by source: everyone came direct, one row with the same figures.
    await page.selectOption("[data-testid=funnel-breakdown]", "visit:source");
    await page.waitForSelector("[data-testid=funnel-breakdown-table] tbody tr");
    assert.match(decodeURIComponent(page.url()), /breakdown=visit:source/);
    await settles(
      "the breakdown's visitors",
      () =>
        page.$$eval("[data-testid=funnel-breakdown-table] tbody tr", (rows) =>
          rows.map((r) => [r.dataset.breakdown, ...[...r.querySelectorAll("td[data-visitors]")].map((td) => Number(td.dataset.visitors))]),
        ),
      [["Direct / None", 6, 3, 1]],
    );
    await screenshot("funnels", "funnel-breakdown.png");
    await page.selectOption("[data-testid=funnel-breakdown]", "");
    await page.waitForSelector("[data-testid=funnel-chart]");
    assert.doesNotMatch(page.url(), /breakdown=/);
  });

  test("a funnel saved through the form is selected, and a bad step shows the server's error", async () => {
    await page.click("[data-testid=funnel-new]");
    await page.fill("[data-testid=funnel-name]", "Pricing to signup");
    // Step 1 is a page, step 2 an event by default; a page without its leading slash is refused.
    await page.fill("[data-testid=funnel-step-0] input", "pricing");
    await page.fill("[data-testid=funnel-step-1] input", "signup");
    await page.selectOption("[data-testid=funnel-window]", "hours");
    await page.fill("[data-testid=funnel-window-count]", "2");
    await page.click("[data-testid=funnel-save]");
    const error = await page.waitForSelector("[data-testid=funnel-form-error]");
    assert.match(await error.textContent(), /steps\[0\]\.page: a page pattern starts with \//);
    await screenshot("funnels", "funnel-form.png");

    await page.fill("[data-testid=funnel-step-0] input", "/pricing");
    await page.click("[data-testid=funnel-save]");
    await page.waitForSelector("[data-testid=funnel-form]", { state: "detached" });
    const { funnels } = await apiCall(heartbeat.base, `/api/sites/${DOMAIN}/funnels`, undefined, ADMIN);
    const created = funnels.find((f) => f.name === "Pricing to signup");
    assert.ok(created, JSON.stringify(funnels));
    assert.deepEqual(created.steps, [{ page: "/pricing" }, { event: "signup" }]);
    assert.deepEqual(created.window, { seconds: 7200 });
    await eventually("the new funnel in the URL", () => page.url().includes(`funnel=${created.funnel_id}`));
    // The picker is drawn again once the list of funnels reloads.
    await eventually(
      "the new funnel picked",
      async () => (await page.$eval("[data-testid=funnel-picker]", (s) => s.value)) === created.funnel_id,
    );
    // /pricing: u1, u2, u3, u6 (4); the signup event within 2 hours after it: u1, u6 (2).
    await settles(
      "the new funnel's steps",
      async () => (await funnelSteps()).map((s) => [s.name, s.visitors]),
      [
        ["Visit /pricing", 4],
        ["signup", 2],
      ],
    );
    assert.match(await page.textContent("[data-testid=funnel-definition]"), /within 2h$/);
    await screenshot("funnels", "funnel-new.png");

    // Deleted (after its confirmation), the site's first funnel shows again.
    page.once("dialog", (dialog) => dialog.accept());
    await page.click("[data-testid=funnel-delete]");
    await eventually("the first funnel selected", async () => {
      const picked = await page.$eval("[data-testid=funnel-picker]", (s) => [s.value, s.options.length]);
      return picked[0] === savedFunnel.funnel_id && picked[1] === 1;
    });
    assert.doesNotMatch(page.url(), /funnel=/);
    const left = await apiCall(heartbeat.base, `/api/sites/${DOMAIN}/funnels`, undefined, ADMIN);
    assert.deepEqual(left.funnels.map((f) => f.name), ["Home to signup"]);
    await settles("the first funnel's visitors", async () => (await funnelSteps()).map((s) => s.visitors), [6, 3, 1]);
  });

  test("the Retention view shows each cohort's size and returns as a heat matrix", async () => {
    await page.click("[data-view=retention]");
    await eventually("view=retention in the URL", () => page.url().includes("view=retention"));
    assert.doesNotMatch(page.url(), /funnel=/, "a view's parameters leave with it");
    await page.fill("[data-testid=retention-periods]", "3");
    await page.press("[data-testid=retention-periods]", "Enter");
    await eventually("ret_periods=3 in the URL", () => page.url().includes("ret_periods=3"));
    // Cohorts by first event: D-2 u3 (1, back on D: day 2); D-1 u1, u2, u7 (3; u1 and u2 back
    // on D: day 1, 66.7 %); D u4, u5, u6 (3).
    const row = (cohort) => `[data-testid=retention-table] tr[data-cohort="${cohort}"]`;
    const cells = (cohort) =>
      page.$$eval(`${row(cohort)} td.heat`, (tds) => tds.map((td) => [td.textContent, td.getAttribute("title")]));
    await settles("the D-1 cohort's row", () => cells(isoDay(dayD - DAY)), [
      ["100%", "3 of 3 people (100%)"],
      ["66.7%", "2 of 3 people (66.7%)"],
      dIsToday ? ["", null] : ["0%", "0 of 3 people (0%)"],
      ["", null],
    ]);
    assert.deepEqual(
      (await cells(isoDay(dayD - 2 * DAY))).map(([t]) => t),
      ["100%", "0%", "100%", dIsToday ? "" : "0%"],
    );
    for (const [cohort, size] of [
      [isoDay(dayD - 2 * DAY), "1"],
      [isoDay(dayD - DAY), "3"],
      [isoDay(dayD), "3"],
    ]) {
      assert.equal(await page.getAttribute(row(cohort), "data-size"), size, `cohort ${cohort}`);
      assert.equal(await page.textContent(`${row(cohort)} td.num`), size, `cohort ${cohort}`);
    }
    // All cohorts, day 1: of the people whose day 1 has begun, 2 of 4 came back (2 of 7 when D
    // is yesterday, D's day 1 being today).
    assert.equal(await page.textContent(`${row("average")} td[data-period="1"]`), dIsToday ? "50%" : "28.6%");
    const share = await page.$eval(`${row(isoDay(dayD - DAY))} td[data-period="1"]`, (td) => td.style.getPropertyValue("--share"));
    assert.ok(Math.abs(Number(share) - 0.6667) < 0.001, `--share ${share}`);
    // The hottest cell (100 %) stays readable: a 4.5:1 contrast (WCAG AA), in both themes.
    const contrast = () => page.$eval(`${row(isoDay(dayD - DAY))} td[data-period="0"]`, cellContrast);
    const light = await contrast();
    assert.ok(light.ratio >= 4.5, JSON.stringify(light));
    await screenshot("retention", "retention.png");
    await page.click("[data-testid=theme]");
    await eventually("the dark theme", async () => (await page.getAttribute("html", "data-theme")) === "dark");
    const dark = await contrast();
    assert.ok(dark.ratio >= 4.5, JSON.stringify(dark));
    assert.notEqual(dark.background, light.background);
    await screenshot("retention", "retention-dark.png");
    await page.click("[data-testid=theme]");
    await page.click("[data-testid=theme]");
    assert.equal(await page.getAttribute("html", "data-theme"), "auto");
  });

  const pathNodes = (step) =>
    page.$$eval(`[data-testid=path-columns] .path-node[data-step="${step}"]`, (nodes) =>
      nodes.map((n) => [n.dataset.name, Number(n.dataset.visitors), Number(n.dataset.dropoffs)]),
    );

  test("the path explorer starts at the top page; a click explores from another", async () => {
    await page.click("[data-view=paths]");
    await eventually("view=paths in the URL", () => page.url().includes("view=paths"));
    // From the first "/" of each visit: 6 people; next /pricing (u1, u2, u3) and /signup (u4);
    // the walk ended at "/" for u5, u7, and u1's and u3's earlier visits (4).
    await settles("step 0", () => pathNodes(0), [["/", 6, 4]]);
    await settles("step 1", () => pathNodes(1), [
      ["/pricing", 3, 2],
      ["/signup", 1, 1],
    ]);
    await settles("step 2", () => pathNodes(2), [["/signup", 2, 2]]);
    assert.equal(await page.inputValue("[data-testid=path-page]"), "/");
    await page.selectOption("[data-testid=path-depth]", "2");
    await eventually("path_depth=2 in the URL", () => page.url().includes("path_depth=2"));
    await settles(
      "the top paths",
      () => page.$$eval("[data-testid=path-list] li", (lis) => lis.map((li) => [li.dataset.pages, Number(li.dataset.visitors)])),
      [["/ /pricing /signup", 2]],
    );
    await screenshot("paths", "paths.png");

    const requery = page.waitForRequest((r) => r.url().endsWith("/api/v2/paths") && JSON.parse(r.postData()).page === "/pricing");
    await page.click('[data-testid=path-columns] .path-node[data-step="1"][data-name="/pricing"]');
    await requery;
    assert.match(decodeURIComponent(page.url()), /path_page=\/pricing/);
    // From /pricing: u1, u2, u3, u6 (4), u3's and u2's earlier walks ending there (2); then
    // /signup: u1, u2, u6 (3), where every walk ended (3).
    await settles("step 0 from /pricing", () => pathNodes(0), [["/pricing", 4, 2]]);
    await settles("step 1 from /pricing", () => pathNodes(1), [["/signup", 3, 3]]);
    assert.equal(await page.inputValue("[data-testid=path-page]"), "/pricing");
  });

  test("the back button walks back through the views", async () => {
    await page.goBack();
    await settles("step 1 from / again", () => pathNodes(1), [
      ["/pricing", 3, 2],
      ["/signup", 1, 1],
    ]);
    assert.doesNotMatch(page.url(), /path_page=/);
    await page.goBack(); // depth 3 again
    await eventually("no path_depth", () => !page.url().includes("path_depth"));
    await page.goBack(); // the Retention view, 3 periods
    await page.waitForSelector("[data-testid=retention-table]");
    assert.match(page.url(), /view=retention/);
    assert.equal(await page.inputValue("[data-testid=retention-periods]"), "3");
    assert.equal(await page.getAttribute("[data-view=retention]", "aria-current"), "page");

    // Overview's URL carries no view, and shows the overview.
    await page.click("[data-view=overview]");
    await page.waitForSelector("[data-testid=top-stats] [data-metric=visitors][data-value='7']");
    assert.doesNotMatch(page.url(), /view=|ret_/);
    await page.goBack();
    await page.waitForSelector("[data-testid=retention-table]");
  });

  test("a public link shows the funnels read-only", async () => {
    const share = await fetch(`${heartbeat.base}/api/sites/${DOMAIN}/share`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(share.status, 200, await share.clone().text());
    const { share_token } = await share.json();
    await page.goto(`${heartbeat.base}/?share=${share_token}&view=funnels&funnel=${savedFunnel.funnel_id}&period=7d`);
    await settles("the shared funnel's visitors", async () => (await funnelSteps()).map((s) => s.visitors), [6, 3, 1]);
    assert.equal(await page.$$eval("[data-testid=funnel-new]", (b) => b.length), 0, "no New funnel button");
    await page.click("[data-view=paths]");
    await eventually("the share token kept in the URL", () => page.url().includes(`share=${share_token}`) && page.url().includes("view=paths"));
  });

  test("the view's date range and filters go into each query", async () => {
    const day = isoDay(dayD);
    const bodies = {};
    const onRequest = (r) => {
      const found = r.url().match(/\/api\/v2\/(funnel|retention|paths)$/);
      if (found) bodies[found[1]] = JSON.parse(r.postData());
    };
    page.on("request", onRequest);
    const filter = encodeURIComponent("visit:entry_page|/pricing");
    await page.goto(`${heartbeat.base}/?site=${DOMAIN}&period=custom&from=${day}&to=${day}&f=${filter}&view=funnels`);
    // On day D only u6 entered at /pricing, and never saw "/".
    await settles("the filtered funnel", async () => (await funnelSteps()).map((s) => s.visitors), [0, 0, 0]);
    await page.waitForSelector("text=Nobody reached the first step in this range.");
    const scope = { date_range: [day, day], filters: [["is", "visit:entry_page", ["/pricing"]]] };
    assert.deepEqual({ date_range: bodies.funnel.date_range, filters: bodies.funnel.filters }, scope);

    await page.click("[data-view=retention]");
    await settles(
      "the filtered cohorts",
      () => page.$$eval("[data-testid=retention-table] tbody tr[data-cohort]", (rows) => rows.map((r) => [r.dataset.cohort, r.dataset.size])),
      [
        ["average", "1"],
        [day, "1"],
      ],
    );
    assert.deepEqual({ date_range: bodies.retention.date_range, filters: bodies.retention.filters }, scope);

    // The page typed in: from u6's /pricing, /signup, where the walk ended.
    await page.click("[data-view=paths]");
    await page.waitForSelector("[data-testid=path-page]");
    await page.fill("[data-testid=path-page]", "/pricing");
    await page.press("[data-testid=path-page]", "Enter");
    await eventually("path_page=/pricing in the URL", () => decodeURIComponent(page.url()).includes("path_page=/pricing"));
    await settles("the filtered paths", async () => [await pathNodes(0), await pathNodes(1)], [[["/pricing", 1, 0]], [["/signup", 1, 1]]]);
    assert.deepEqual({ date_range: bodies.paths.date_range, filters: bodies.paths.filters }, scope);
    page.off("request", onRequest);
  });

  test("a site without data or funnels gets empty states", async () => {
    await page.goto(`${heartbeat.base}/?site=${EMPTY}&view=funnels&period=7d`);
    await page.waitForSelector("[data-testid=funnels-empty]");
    assert.match(await page.textContent("[data-testid=funnels-empty]"), /no funnels yet/);
    // The first funnel, from the form: nobody on any step; deleted, the empty state is back.
    await page.click("[data-testid=funnel-new]");
    await page.fill("[data-testid=funnel-name]", "First");
    await page.fill("[data-testid=funnel-step-1] input", "signup");
    await page.click("[data-testid=funnel-save]");
    await settles("the empty funnel", async () => (await funnelSteps()).map((s) => [s.name, s.visitors]), [
      ["Visit /", 0],
      ["signup", 0],
    ]);
    page.once("dialog", (dialog) => dialog.accept());
    await page.click("[data-testid=funnel-delete]");
    await page.waitForSelector("[data-testid=funnels-empty]");
    assert.equal(await page.$$eval("[data-testid=funnel-chart]", (c) => c.length), 0, "no chart left of the deleted funnel");
    await page.click("[data-view=retention]");
    await page.waitForSelector("[data-testid=retention-empty]");
    await page.click("[data-view=paths]");
    await page.waitForSelector("[data-testid=paths-empty]");
    assert.equal(await page.$$eval(".product .error", (e) => e.length), 0);
  });
});
