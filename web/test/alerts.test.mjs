// Alerts and annotations on the dashboard, in headless Chromium against the real binary, which
// evaluates alert rules every 500 ms here (HEARTBEAT_ALERTS_INTERVAL_MS): the owner signs in,
// creates "pageviews above 2 over 5 minutes" through the Alerts view's form, three pageviews
// arrive through Plausible's Events API, and the rule turns to firing with a firing of value 3
// in its history; the overview's chart then marks the firing, a note added through the chart's
// control is drawn beside it, a webhook's signing secret shows once, a rule without a name
// gets the server's error beside the name field, and an email report sent now reaches a mail
// server (a plain-text SMTP sink in this test).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { USER_AGENT, apiCall, eventually, freePort, launchChromium, startHeartbeat } from "./harness.mjs";

const ADMIN = "alerts-test-admin-token";
const DOMAIN = "alerts.test";
const OWNER = { email: "owner@alerts.test", password: "correct horse battery staple" };
const artifact = (name) => new URL(`../test-artifacts/${name}`, import.meta.url).pathname;

/**
 * A mail server that takes every message (plain SMTP, no login) on `port` and keeps it:
 * `messages` holds `{to, data}` per message.
 */
function smtpSink(port) {
  const messages = [];
  const server = createServer((socket) => {
    let buffer = "";
    let data = null;
    let to = [];
    const reply = (line) => socket.write(`${line}\r\n`);
    reply("220 sink ESMTP");
    socket.on("data", (chunk) => {
      buffer += chunk.toString("utf8");
      for (let end = buffer.indexOf("\r\n"); end >= 0; end = buffer.indexOf("\r\n")) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (data !== null) {
          if (line === ".") {
            messages.push({ to, data: data.join("\n") });
            data = null;
            to = [];
            reply("250 queued");
          } else data.push(line.startsWith("..") ? line.slice(1) : line);
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "RCPT") to.push(line.match(/<(.*)>/)?.[1]);
        if (verb === "DATA") data = [];
        reply(verb === "DATA" ? "354 go on" : verb === "QUIT" ? "221 bye" : "250 ok");
        if (verb === "QUIT") socket.end();
      }
    });
    socket.on("error", () => undefined);
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve({ messages, close: () => server.close() })));
}

describe("alerts and annotations on the dashboard", () => {
  let heartbeat;
  let browser;
  let context;
  let page;
  let mail;
  before(async () => {
    const smtpPort = await freePort();
    mail = await smtpSink(smtpPort);
    heartbeat = await startHeartbeat(ADMIN, {
      env: {
        HEARTBEAT_ALERTS_INTERVAL_MS: "500",
        HEARTBEAT_SMTP_HOST: "127.0.0.1",
        HEARTBEAT_SMTP_PORT: String(smtpPort),
        HEARTBEAT_SMTP_TLS: "none",
      },
    });
    browser = await launchChromium();
    await apiCall(heartbeat.base, "/api/site/create", { name: DOMAIN, domain: DOMAIN, timezone: "Etc/UTC" }, ADMIN);
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    await heartbeat?.stop();
    mail?.close();
  });

  const api = (path) => apiCall(heartbeat.base, `/api/sites/${DOMAIN}${path}`, undefined, ADMIN);
  const ruleRow = (name) => `[data-testid=alert-table] tr[data-name="${name}"]`;

  test("a rule made through the form fires on three pageviews", async () => {
    // The owner's account, made on first run: the dashboard then works with its session.
    await page.goto(`${heartbeat.base}/?site=${DOMAIN}&period=day`);
    await page.waitForSelector("[data-testid=account-submit]:has-text('Create owner account')");
    await page.fill("input[name=email]", OWNER.email);
    await page.fill("input[name=password]", OWNER.password);
    await page.click("[data-testid=account-submit]");
    await page.click("[data-view=alerts]");
    await eventually("view=alerts in the URL", () => page.url().includes("view=alerts"));
    await page.waitForSelector("[data-testid=alerts-empty]");

    await page.getByRole("button", { name: "New alert" }).click();
    await page.getByLabel("Name", { exact: true }).fill("Pageview burst");
    await page.getByLabel("Metric").selectOption("pageviews");
    await page.getByLabel("Window (minutes)").fill("5");
    await page.getByLabel("Condition").selectOption("above");
    await page.getByLabel("Threshold").fill("2");
    await page.getByRole("button", { name: "Save alert" }).click();
    await page.waitForSelector("[data-testid=alert-form]", { state: "detached" });

    const { alerts } = await api("/alerts");
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    const [rule] = alerts;
    assert.deepEqual(
      { name: rule.name, metric: rule.metric, filters: rule.filters, window: rule.window_minutes, condition: rule.condition, enabled: rule.enabled },
      { name: "Pageview burst", metric: "pageviews", filters: [], window: 5, condition: { type: "above", threshold: 2 }, enabled: true },
    );
    await page.waitForSelector(ruleRow("Pageview burst"));
    assert.equal(await page.textContent(`${ruleRow("Pageview burst")} [data-testid=alert-condition]`), "Pageviews above 2");
    assert.match(await page.textContent(ruleRow("Pageview burst")), /5 minutes/);

    // Three pageviews now, through Plausible's Events API (stamped when received).
    for (const path of ["/", "/pricing", "/about"]) {
      const sent = await fetch(`${heartbeat.base}/api/event`, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": USER_AGENT },
        body: JSON.stringify({ name: "pageview", url: `https://${DOMAIN}${path}`, domain: DOMAIN }),
      });
      assert.equal(sent.status, 202, await sent.text());
      assert.equal(sent.headers.get("x-heartbeat-dropped"), null, `${path} dropped`);
    }

    await page.waitForSelector(`${ruleRow("Pageview burst")}[data-state=firing]`, { timeout: 20_000 });
    assert.equal(await page.textContent(`${ruleRow("Pageview burst")} [data-testid=alert-state]`), "firing");
    assert.equal(await page.textContent(`${ruleRow("Pageview burst")} [data-testid=alert-last-value]`), "3");
    const fired = `[data-testid=alert-history-table] tr[data-alert-name="Pageview burst"][data-value="3"]`;
    await page.waitForSelector(fired, { timeout: 20_000 });
    assert.equal(await page.getAttribute(fired, "data-state"), "firing");
    const cells = await page.$$eval(`${fired} td`, (tds) => tds.map((td) => td.textContent.trim()));
    assert.equal(cells[1], "firing", "not resolved");
    assert.equal(cells[2], "3", "value");
    assert.equal(cells[3], "2", "expected: the threshold");
    const { history } = await api("/alerts/history?limit=50");
    assert.equal(history.length, 1, JSON.stringify(history));
    assert.deepEqual([history[0].alert_id, history[0].value, history[0].resolved_at], [rule.alert_id, 3, null]);
    await page.waitForSelector("[data-testid=alert-rules][data-loading=false]");
    await page.screenshot({ path: artifact("alerts.png"), fullPage: true });
  });

  test("a rule without a name gets the server's error beside the name field", async () => {
    await page.getByRole("button", { name: "New alert" }).click();
    await page.getByLabel("Threshold").fill("10");
    const refused = page.waitForResponse((r) => r.url().endsWith(`/api/sites/${DOMAIN}/alerts`) && r.request().method() === "POST");
    await page.getByRole("button", { name: "Save alert" }).click();
    const response = await refused;
    assert.equal(response.status(), 400, await response.text());
    const name = page.getByLabel("Name", { exact: true });
    const error = await page.waitForSelector("[data-testid=alert-name-error]");
    assert.ok((await error.textContent()).trim().length > 0);
    assert.equal(await name.getAttribute("aria-invalid"), "true");
    // Beside the field: in the name's own field, and what the input says describes it.
    assert.equal(await name.getAttribute("aria-describedby"), "alert-name-error");
    assert.equal(await page.$eval("[data-testid=alert-name-error]", (e) => e.parentElement.querySelector("input")?.id), "alert-name");
    assert.equal(await page.$$eval("[data-testid=alert-form] .field-error", (errors) => errors.length), 1, "only the name is wrong");
    await page.screenshot({ path: artifact("alert-form-error.png"), fullPage: true });
    await page.getByRole("button", { name: "Cancel" }).click();
    assert.equal((await api("/alerts")).alerts.length, 1);
  });

  test("a webhook's signing secret shows once", async () => {
    const url = "https://hooks.example.com/x";
    await page.getByLabel("Webhook URL").fill(url);
    await page.getByLabel("Format").selectOption("json");
    const created = page.waitForResponse((r) => r.url().endsWith(`/api/sites/${DOMAIN}/webhooks`) && r.request().method() === "POST");
    await page.getByRole("button", { name: "Add webhook" }).click();
    const answer = await (await created).json();
    assert.ok(answer.webhook?.secret, JSON.stringify(answer));
    const secret = await page.waitForSelector("[data-testid=webhook-secret-value]");
    assert.equal(await secret.textContent(), answer.webhook.secret);
    await page.waitForSelector(`[data-testid=webhook-list] li[data-url="${url}"]`);
    await page.screenshot({ path: artifact("alerts-webhook.png"), fullPage: true });

    // Never again: not in the list the server gives, gone from the page once dismissed, and
    // not back after a reload. The New alert form offers the webhook.
    const { webhooks } = await api("/webhooks");
    assert.deepEqual(webhooks.map((w) => [w.url, w.format, w.secret]), [[url, "json", undefined]]);
    await page.getByRole("button", { name: "Done" }).click();
    await page.waitForSelector("[data-testid=webhook-secret]", { state: "detached" });
    await page.reload();
    await page.waitForSelector(`[data-testid=webhook-list] li[data-url="${url}"]`);
    assert.equal(await page.$$eval("[data-testid=webhook-secret]", (s) => s.length), 0);
    assert.ok(!(await page.content()).includes(answer.webhook.secret), "the secret is nowhere on the page");
    await page.getByRole("button", { name: "New alert" }).click();
    await page.locator("[data-testid=alert-form]").getByRole("checkbox", { name: url }).check();
    await page.getByRole("button", { name: "Cancel" }).click();
  });

  test("an email report is added, and sent now reaches the mail server", async () => {
    // Not an address: the server's error beside the email field.
    await page.getByLabel("Report email").fill("weekly at alerts.test");
    await page.getByRole("button", { name: "Add report" }).click();
    await page.waitForSelector("[data-testid=report-email-error]");
    assert.equal(await page.getByLabel("Report email").getAttribute("aria-invalid"), "true");

    await page.getByLabel("Report email").fill("weekly@alerts.test");
    await page.getByLabel("Period").selectOption("weekly");
    await page.getByRole("button", { name: "Add report" }).click();
    const row = '[data-testid=report-list] li[data-email="weekly@alerts.test"][data-period=weekly]';
    await page.waitForSelector(row);
    await page.waitForSelector("[data-testid=report-email-error]", { state: "detached" });
    const { reports } = await api("/reports");
    assert.deepEqual(reports.map((r) => [r.email, r.period]), [["weekly@alerts.test", "weekly"]]);

    await page.getByRole("button", { name: "Send the report to weekly@alerts.test now" }).click();
    await page.waitForSelector(`${row}:has-text("Queued to send")`);
    const message = await eventually("the report in the mail server", () => mail.messages.find((m) => m.to.includes("weekly@alerts.test")));
    assert.match(message.data, /^To: .*weekly@alerts\.test/im);
    await page.screenshot({ path: artifact("alerts-reports.png"), fullPage: true });
  });

  test("the overview's chart marks the firing, and a note added beside the chart", async () => {
    await page.click("[data-view=overview]");
    // Locators, not handles: each redraw of the chart draws its markers anew.
    const alertMarker = page.locator("[data-testid=chart] .annotation-marker[data-kind=alert]");
    await alertMarker.waitFor({ timeout: 20_000 });
    const { annotations } = await api("/annotations");
    const alertNote = annotations.find((a) => a.kind === "alert");
    assert.ok(alertNote, JSON.stringify(annotations));
    assert.equal(await alertMarker.getAttribute("data-annotation-ids"), alertNote.annotation_id);
    const alertLabel = await alertMarker.getAttribute("aria-label");
    assert.ok(alertLabel.startsWith("Alert: ") && alertLabel.endsWith(` · ${alertNote.text}`), alertLabel);

    await page.getByRole("button", { name: "Add annotation" }).click();
    await page.getByLabel("Annotation text").fill("Launched the pricing page");
    await page.getByRole("button", { name: "Save annotation" }).click();
    await page.waitForSelector("[data-testid=annotation-form]", { state: "detached" });
    const note = page.locator("[data-testid=chart] .annotation-marker[data-kind=note]");
    await note.waitFor();
    assert.match(await note.getAttribute("aria-label"), /^Note: \d{4}-\d\d-\d\d \d\d:\d\d · Launched the pricing page$/);
    const notes = (await api("/annotations")).annotations.filter((a) => a.kind === "note");
    assert.deepEqual(notes.map((a) => a.text), ["Launched the pricing page"]);
    // Within a minute of now (the control starts at the current minute, on the site's clock).
    assert.ok(Math.abs(Date.parse(notes[0].at) - Date.now()) < 120_000, notes[0].at);

    // Both markers stand over the plot, in the current hour's bucket (a few pixels apart),
    // in two colours; hovering the note shows its text.
    const boxes = await page.$$eval("[data-testid=chart] .annotation-marker", (markers) =>
      markers.map((m) => ({ kind: m.dataset.kind, left: m.getBoundingClientRect().left, color: getComputedStyle(m, "::before").backgroundColor })),
    );
    assert.equal(boxes.length, 2, JSON.stringify(boxes));
    const [alertBox, noteBox] = [boxes.find((b) => b.kind === "alert"), boxes.find((b) => b.kind === "note")];
    const hour = (iso) => iso.slice(0, 13);
    if (hour(alertNote.at) === hour(notes[0].at)) assert.equal(Math.round(alertBox.left - noteBox.left), 7, JSON.stringify(boxes));
    else assert.ok(noteBox.left > alertBox.left, JSON.stringify(boxes));
    assert.notEqual(alertBox.color, noteBox.color);
    await note.hover();
    const tip = await note.evaluate((m) => getComputedStyle(m, "::after").content);
    assert.match(tip, /Launched the pricing page/);
    await page.screenshot({ path: artifact("alerts-annotations.png"), fullPage: true });
  });
});
