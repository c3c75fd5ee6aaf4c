// Browser test of the web UI in headless Debian Chromium, driven by playwright-core (no browser
// download). Usage: node ui.mjs BASE_URL OUT_DIR EXPECTED_JSON
// EXPECTED_JSON: {"operator": pw, "isp": pw, "univ": pw, "packets": N, "sources": N}
// Logs in as the operator and as two members, checks the overview's numbers and charts, the
// live view, findings, the workbench, the member portal, that a member cannot open another
// member's alert by URL, and saves a screenshot of every page in OUT_DIR.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const [base, outDir, expectedFile] = process.argv.slice(2);
const expected = JSON.parse(fs.readFileSync(expectedFile, "utf8"));
fs.mkdirSync(outDir, { recursive: true });
const results = [];
const check = (name, ok, detail = "") => {
  results.push({ name, ok: !!ok, detail: String(detail) });
  if (!ok) console.error(`FAIL ${name}: ${detail}`);
};
const num = s => Number(String(s).replace(/[^0-9.]/g, ""));

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

async function session(user, password) {
  const ctx = await browser.newContext({ viewport: { width: 1600, height: 1000 }, locale: "en-US" });
  const page = await ctx.newPage();
  const errors = [];
  // Uncaught script errors, and any failed asset or server error. (A 401/403/404 from the API is
  // what some checks provoke on purpose; the browser logs those as console errors too.)
  page.on("pageerror", e => errors.push(e.message));
  page.on("response", r => {
    const u = new URL(r.url());
    if (r.status() >= 500 || (r.status() >= 400 && !u.pathname.startsWith("/api/"))) errors.push(`${r.status()} ${u.pathname}`);
  });
  await page.goto(base + "/#/login");
  await page.fill("#user", user);
  await page.fill("#password", password);
  await page.click("#login-btn");
  await page.waitForSelector("#nav a");
  return { ctx, page, errors };
}

const shot = async (page, name) => page.screenshot({ path: path.join(outDir, name + ".png"), fullPage: true });

try {
  // ---------------------------------------------------------------- operator
  {
    const { ctx, page, errors } = await session("operator", expected.operator);
    await page.goto(base + "/#/overview");
    await page.waitForSelector("#t-packets .v");
    await page.waitForSelector("#ch-series polyline");
    const packets = num(await page.textContent("#t-packets .v"));
    check("overview packets tile = lake", packets === expected.packets, `${packets} vs ${expected.packets}`);
    const sources = num(await page.textContent("#t-sources .v"));
    check("overview sources tile = lake", sources === expected.sources, `${sources} vs ${expected.sources}`);
    const lines = await page.locator("#ch-series polyline").count();
    check("time series has packets and sources lines", lines === 2, lines);
    const points = (await page.getAttribute("#ch-series polyline", "points")).trim().split(" ").length;
    check("hourly series has 24 points", points === 24, points);
    const ports = await page.locator("#ch-ports .row").count();
    check("top-10 ports drawn", ports === 10, ports);
    const donut = await page.locator("#ch-proto path").count();
    check("protocol donut drawn", donut >= 2, donut);
    check("tools listed", (await page.locator("#ch-tools .row").count()) >= 3, "");
    await shot(page, "01-overview-operator");

    await page.goto(base + "/#/live");
    await page.waitForFunction(() => /REPLAY|LIVE/.test(document.querySelector("#lv-badge")?.textContent || ""), null, { timeout: 30000 });
    await page.waitForTimeout(2500);
    const ticker = await page.locator("#ticker div").count();
    check("live view streams packets", ticker > 10, ticker);
    await shot(page, "02-live");

    await page.goto(base + "/#/findings?kind=scan");
    await page.waitForSelector("#fd-table tr.click");
    check("scan findings listed", (await page.locator("#fd-table tr.click").count()) > 10, "");
    await shot(page, "03-findings-scan");
    await page.goto(base + "/#/findings?kind=backscatter");
    await page.waitForSelector("#fd-table tr.click");
    await page.locator("#fd-table tr.click").first().click();
    await page.waitForSelector("text=Packets behind it");
    check("finding detail shows its packets", (await page.locator("table td.mono").count()) > 5, "");
    await shot(page, "04-finding-detail");
    await page.goto(base + "/#/findings?kind=campaign");
    await page.waitForSelector("#fd-table table");
    await shot(page, "05-campaigns");

    await page.goto(base + "/#/workbench");
    await page.waitForSelector("#wb-table tbody tr");
    check("workbench runs the default query", (await page.locator("#wb-table tbody tr").count()) > 5, "");
    await page.waitForSelector("#wb-chart .row");
    await shot(page, "06-workbench");

    await page.goto(base + "/#/alerts");
    await page.waitForSelector("#alert-table tr.click");
    const ispAlert = await page.locator("#alert-table tr.click", { hasText: "demo-isp" }).first().getAttribute("data-id");
    check("operator sees demo-isp's alerts", !!ispAlert, ispAlert);
    expected.ispAlert = ispAlert;
    await shot(page, "07-alerts-operator");
    await page.goto(base + "/#/intel");
    await page.waitForSelector("#colls .card");
    await shot(page, "08-intel-operator");
    check("no script errors (operator)", errors.length === 0, errors.join(" | "));
    await ctx.close();
  }
  // ---------------------------------------------------------------- member demo-univ
  {
    const { ctx, page, errors } = await session("univ", expected.univ);
    await page.waitForSelector("#open-alerts");
    await shot(page, "09-portal-univ");
    // Another member's alert by URL: not found in the page, 404 from the API.
    await page.goto(base + "/#/alerts/" + expected.ispAlert);
    await page.waitForSelector("#not-found");
    const api = await page.request.get(base + "/api/v1/alerts/" + expected.ispAlert);
    check("a member cannot reach another member's alert", api.status() === 404, api.status());
    await shot(page, "10-other-members-alert");
    const list = await (await page.request.get(base + "/api/v1/alerts")).json();
    check("univ's alert list holds only univ's alerts", list.alerts.every(a => a.org === "demo-univ"), JSON.stringify(list.alerts.map(a => a.org)));
    const sql = await page.request.post(base + "/api/v1/query", { data: { sql: "SELECT 1" }, headers: { "Content-Type": "application/json" } });
    check("a member cannot run SQL", sql.status() === 403, sql.status());
    check("no script errors (univ)", errors.length === 0, errors.join(" | "));
    await ctx.close();
  }
  // ---------------------------------------------------------------- member demo-isp
  {
    const { ctx, page, errors } = await session("isp", expected.isp);
    await page.waitForSelector("#open-alerts");
    const open = num(await page.textContent("#open-alerts"));
    check("isp has open alerts", open >= 2, open);
    await page.fill("#new-prefix", "198.51.100.0/24");
    await page.click("#add-prefix button");
    await page.waitForSelector("#prefix-table td:has-text('198.51.100.0/24')");
    check("a member adds a prefix", true);
    await shot(page, "11-portal-isp");
    await page.goto(base + "/#/alerts");
    await page.waitForSelector("#alert-table button.ack");
    await page.locator("#alert-table button.ack").first().click();
    await page.waitForSelector("#alert-table .badge.acknowledged");
    check("a member acknowledges its alert", true);
    await shot(page, "12-alerts-isp");
    await page.goto(base + "/#/overview");
    await page.waitForSelector("#ch-series polyline");
    await shot(page, "13-overview-member");
    check("no script errors (isp)", errors.length === 0, errors.join(" | "));
    await ctx.close();
  }
} catch (e) {
  check("browser run", false, e.stack || e.message);
} finally {
  await browser.close();
}
fs.writeFileSync(path.join(outDir, "results.json"), JSON.stringify(results, null, 2));
const failed = results.filter(r => !r.ok);
console.log(`${results.length - failed.length}/${results.length} checks passed`);
process.exit(failed.length ? 1 : 0);
