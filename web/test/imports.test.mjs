// The dashboard with imported statistics, in headless Chromium against the real binary: a
// site gets a Plausible export (a zip of its ten CSV files, built here with known numbers)
// through POST /api/imports/plausible; the dashboard then counts the imported visitors, the
// "Imported data" toggle beside the date range takes them out (imports=0 in the URL) and puts
// them back, and a filter no imported table holds says that imported data is left out.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { deflateRawSync } from "node:zlib";
import { apiCall, launchChromium, startHeartbeat } from "./harness.mjs";

const ADMIN = "imports-test-admin-token";
const DOMAIN = "imported.test";

/** CRC-32 of `bytes`, as zip entries carry it. */
function crc32(bytes) {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

/** A zip archive (deflated entries) of `files`: `[name, text]` pairs. */
function zip(files) {
  const locals = [];
  const central = [];
  let offset = 0;
  for (const [name, text] of files) {
    const data = Buffer.from(text);
    const packed = deflateRawSync(data);
    const nameBytes = Buffer.from(name);
    const header = Buffer.alloc(30);
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(8, 8);
    header.writeUInt32LE(crc32(data), 14);
    header.writeUInt32LE(packed.length, 18);
    header.writeUInt32LE(data.length, 22);
    header.writeUInt16LE(nameBytes.length, 26);
    locals.push(header, nameBytes, packed);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(20, 4);
    entry.writeUInt16LE(20, 6);
    entry.writeUInt16LE(8, 10);
    entry.writeUInt32LE(crc32(data), 16);
    entry.writeUInt32LE(packed.length, 20);
    entry.writeUInt32LE(data.length, 24);
    entry.writeUInt16LE(nameBytes.length, 28);
    entry.writeUInt32LE(offset, 42);
    central.push(entry, nameBytes);
    offset += header.length + nameBytes.length + packed.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/** Plausible's export of 40 visitors over the last two days, 25 of them on mobile. */
function exportZip(day, yesterday) {
  const compact = (d) => d.replaceAll("-", "");
  const visits = "visitors,visits,visit_duration,bounces,pageviews";
  const files = {
    imported_visitors: `date,visitors,pageviews,bounces,visits,visit_duration\n${yesterday},30,60,10,30,900\n${day},10,10,5,10,100\n`,
    imported_sources: `date,source,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,pageviews,visitors,visits,visit_duration,bounces\n${yesterday},Google,,,,,,,60,30,30,900,10\n${day},,,,,,,,10,10,10,100,5\n`,
    imported_pages: `date,hostname,page,visits,visitors,pageviews,scroll_depth,pageleave_visitors\n${yesterday},${DOMAIN},/old,30,30,60,,0\n${day},${DOMAIN},/old,10,10,10,,0\n`,
    imported_entry_pages: `date,entry_page,visitors,entrances,visit_duration,bounces,pageviews\n${yesterday},/old,30,30,900,10,60\n`,
    imported_exit_pages: `date,exit_page,visitors,visit_duration,exits,bounces,pageviews\n${yesterday},/old,30,900,30,10,60\n`,
    imported_custom_events: `date,name,link_url,path,visitors,events\n`,
    imported_locations: `date,country,region,city,${visits}\n${yesterday},EE,,0,30,30,900,10,60\n`,
    imported_devices: `date,device,${visits}\n${yesterday},Mobile,25,25,800,8,50\n${day},Desktop,15,15,200,7,20\n`,
    imported_browsers: `date,browser,browser_version,${visits}\n${yesterday},Firefox,120,30,30,900,10,60\n`,
    imported_operating_systems: `date,operating_system,operating_system_version,${visits}\n${yesterday},Android,14,30,30,900,10,60\n`,
  };
  return zip(Object.entries(files).map(([table, text]) => [`${table}_${compact(yesterday)}_${compact(day)}.csv`, text]));
}

describe("imported statistics on the dashboard", () => {
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

  test("the toggle takes imported visitors out and back, and says when filters leave them out", async () => {
    const base = heartbeat.base;
    await apiCall(base, "/api/site/create", { name: DOMAIN, domain: DOMAIN, timezone: "Etc/UTC" }, ADMIN);
    const now = new Date();
    const day = now.toISOString().slice(0, 10);
    const yesterday = new Date(now.getTime() - 86_400_000).toISOString().slice(0, 10);
    const response = await fetch(`${base}/api/imports/plausible?site_id=${DOMAIN}`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/zip" },
      body: exportZip(day, yesterday),
    });
    assert.equal(response.status, 200, await response.clone().text());

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/?site=${DOMAIN}&period=custom&from=${yesterday}&to=${day}`);
    await page.fill("input[name=token]", ADMIN);
    await page.click("[data-testid=key-submit]");
    const visitors = async () => Number(await page.getAttribute("[data-testid=top-stats] [data-metric=visitors]", "data-value"));
    await page.waitForSelector("[data-testid=top-stats] [data-metric=visitors][data-value='40']");
    assert.equal(await page.isChecked("[data-testid=imports]"), true, "imports are in by default");
    await page.waitForSelector('[data-panel="Devices"] li[data-value="Mobile"]');
    // Two days are charted by hour, which imported days cannot fill: the chart says so.
    await page.waitForSelector("[data-testid=chart-without-imports]");
    await page.screenshot({ path: new URL("../test-artifacts/imports.png", import.meta.url).pathname, fullPage: true });

    await page.uncheck("[data-testid=imports]");
    await page.waitForSelector("[data-testid=top-stats] [data-metric=visitors][data-value='0']");
    assert.match(page.url(), /imports=0/);
    assert.equal(await visitors(), 0);

    await page.check("[data-testid=imports]");
    await page.waitForSelector("[data-testid=top-stats] [data-metric=visitors][data-value='40']");
    assert.doesNotMatch(page.url(), /imports=0/);

    // A source filter with a device filter: no imported table holds both.
    await page.goto(`${base}/?site=${DOMAIN}&period=custom&from=${yesterday}&to=${day}&f=visit:source|Google&f=visit:device|Mobile`);
    await page.waitForSelector("[data-testid=imports-skipped]");
    await context.close();
  });
});
