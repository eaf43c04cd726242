// Drives the HTML report of `periodic scan` in headless Chromium: the real binary scans the
// fixture folder, and the page it writes must load offline without errors, draw one tile per
// pattern, narrow the tiles with the filter and show a pattern's copies side by side.
//
// Needs what tests/html/setup.sh installs. PERIODIC_BIN names the binary (default:
// target/debug/periodic under the repository root); CHROMIUM_BIN the browser
// (default /usr/bin/chromium). A screenshot is written to tests/html/artifacts/report.png.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { pathToFileURL } = require("node:url");
const { chromium } = require("playwright-core");

const here = __dirname;
const repositoryRoot = path.resolve(here, "..", "..");
const fixtureDir = path.join(here, "fixture");
const artifactsDir = path.join(here, "artifacts");
const periodicBin = process.env.PERIODIC_BIN || path.join(repositoryRoot, "target", "debug", "periodic");
const chromiumBin = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

let scratchDir;
let reportFile;
let context;
let page;
const consoleErrors = [];
const foreignRequests = [];

before(async () => {
  scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), "periodic-html-test-"));
  reportFile = path.join(scratchDir, "report.html");
  execFileSync(periodicBin, ["scan", fixtureDir, "--format", "html", "--output", reportFile, "--no-index"], {
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 120_000,
  });
  assert.ok(fs.statSync(reportFile).size > 0, "the scan wrote a report");

  context = await chromium.launchPersistentContext(path.join(scratchDir, "profile"), {
    executablePath: chromiumBin,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1400, height: 900 },
  });
  page = context.pages()[0] || (await context.newPage());
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
  const reportUrl = pathToFileURL(reportFile).href;
  page.on("request", (request) => {
    if (request.url() !== reportUrl && !request.url().startsWith("data:")) foreignRequests.push(request.url());
  });
  await page.goto(reportUrl, { waitUntil: "load" });
});

after(async () => {
  if (context) await context.close();
  if (scratchDir) fs.rmSync(scratchDir, { recursive: true, force: true });
});

/** Ids of the tiles currently shown. */
function visibleTileIds() {
  return page.$$eval("[data-pattern-id].tile", (tiles) => tiles.filter((tile) => !tile.hidden).map((tile) => tile.dataset.patternId));
}

/** The report data the page embeds, as the page itself reads it. */
function embeddedData() {
  return page.evaluate(() => JSON.parse(document.getElementById("periodic-data").textContent));
}

async function setFilter(text) {
  await page.fill("#filter", text);
  // The filter runs on the next animation frame.
  await page.waitForFunction(() => new Promise((resolve) => requestAnimationFrame(() => resolve(true))));
}

test("the page loads offline without console errors", async () => {
  assert.match(await page.title(), /^Periodic table of fixture$/);
  assert.deepEqual(consoleErrors, []);
  assert.deepEqual(foreignRequests, [], "the report must not load anything");
  const files = await page.textContent("#stat-files");
  assert.ok(Number(files.replace(/,/g, "")) >= 6, `stats header counts the fixture files, got ${files}`);
  const duplication = await page.textContent("#stat-duplication");
  assert.match(duplication, /^\d+(\.\d)?%$/);
  assert.ok(parseFloat(duplication) > 0, "the fixture holds duplicated code");
});

test("one tile per pattern is drawn", async () => {
  const data = await embeddedData();
  const tileIds = await page.$$eval("[data-pattern-id].tile", (tiles) => tiles.map((tile) => tile.dataset.patternId));
  assert.ok(tileIds.length > 0, "tiles render");
  assert.deepEqual(tileIds, data.patterns.map((pattern) => pattern.id));
  const firstTileText = await page.textContent(`.tile[data-pattern-id="${tileIds[0]}"]`);
  assert.ok(firstTileText.includes(data.patterns[0].symbol) && firstTileText.includes(data.patterns[0].id));
  const invoicePattern = data.patterns.find((pattern) =>
    pattern.members.some((member) => member.path === "billing/invoice.py") &&
    pattern.members.some((member) => member.path === "billing/receipt.py"));
  assert.ok(invoicePattern, "the function shared by invoice.py and receipt.py is a pattern");
  assert.equal(await page.textContent("#shown-count"), `${tileIds.length} of ${tileIds.length} patterns`);
});

test("the filter and the kind boxes narrow the tiles", async () => {
  const all = await visibleTileIds();
  assert.ok(all.length >= 2, `the fixture yields several patterns, got ${all.length}`);

  await setFilter("latency_report");
  const latency = await visibleTileIds();
  assert.ok(latency.length > 0 && latency.length < all.length, `filter by path: ${latency.length} of ${all.length}`);
  const data = await embeddedData();
  for (const id of latency) {
    const pattern = data.patterns.find((candidate) => candidate.id === id);
    assert.ok(pattern.members.some((member) => member.path.includes("latency_report")));
  }

  const webPattern = data.patterns.find((pattern) => pattern.members.some((member) => member.path.startsWith("web/")));
  assert.ok(webPattern, "the JavaScript pair is a pattern");
  await setFilter(webPattern.languages[0].toUpperCase());
  const sameLanguage = await visibleTileIds();
  assert.ok(sameLanguage.includes(webPattern.id), "filter by language, any case");
  assert.ok(sameLanguage.length < all.length, "the Python patterns are filtered out");

  await setFilter("no pattern has this name");
  assert.deepEqual(await visibleTileIds(), []);
  assert.equal(await page.isVisible("#empty"), true);

  await setFilter("");
  assert.deepEqual(await visibleTileIds(), all);

  const kinds = await page.$$eval('input[name="kind"]', (boxes) => boxes.map((box) => box.value));
  for (const kind of kinds) await page.uncheck(`input[name="kind"][value="${kind}"]`);
  const knownKindPatterns = data.patterns.filter((pattern) => kinds.includes(pattern.kind));
  assert.equal((await visibleTileIds()).length, all.length - knownKindPatterns.length);
  for (const kind of kinds) await page.check(`input[name="kind"][value="${kind}"]`);
  assert.deepEqual(await visibleTileIds(), all);
});

test("colour follows the toggle", async () => {
  const firstTile = ".tile[data-pattern-id]";
  const byLanguage = await page.$eval(firstTile, (tile) => getComputedStyle(tile).getPropertyValue("--lang-bg").trim());
  const byKind = await page.$eval(firstTile, (tile) => getComputedStyle(tile).getPropertyValue("--kind-bg").trim());
  assert.equal(await page.$eval(firstTile, (tile) => getComputedStyle(tile).backgroundColor !== "rgba(0, 0, 0, 0)"), true);
  await page.check('input[name="colour"][value="kind"]');
  assert.equal(await page.getAttribute("body", "data-colour"), "kind");
  const legendByKind = await page.textContent("#legend");
  assert.match(legendByKind, /T[123]/);
  await page.check('input[name="colour"][value="language"]');
  assert.equal(await page.getAttribute("body", "data-colour"), "language");
  assert.ok(byLanguage && byKind, "each tile carries both colourings");
});

test("a click shows the members side by side with their code", async () => {
  const data = await embeddedData();
  const invoicePattern = data.patterns.find((pattern) =>
    pattern.members.some((member) => member.path === "billing/invoice.py") &&
    pattern.members.some((member) => member.path === "billing/receipt.py"));
  assert.ok(invoicePattern);
  await page.click(`.tile[data-pattern-id="${invoicePattern.id}"]`);
  await page.waitForSelector(`#detail[data-pattern-id="${invoicePattern.id}"]`, { state: "visible" });

  const columns = await page.$$("#detail .member");
  assert.ok(columns.length >= 2, `at least two copies shown, got ${columns.length}`);
  const [first, second] = await Promise.all(columns.slice(0, 2).map((column) => column.boundingBox()));
  assert.ok(Math.abs(first.y - second.y) < 2, "copies sit on one row");
  assert.ok(second.x >= first.x + first.width - 1, "the second copy is to the right of the first");

  const paths = await page.$$eval("#detail .member", (members) => members.map((member) => member.dataset.path));
  assert.ok(paths.includes("billing/invoice.py") && paths.includes("billing/receipt.py"), paths.join(", "));
  const invoiceCode = await page.textContent('#detail .member[data-path="billing/invoice.py"] pre.code');
  assert.ok(invoiceCode.includes("subtotal += item.unit_price * item.quantity"), invoiceCode);
  const receiptSource = fs.readFileSync(path.join(fixtureDir, "billing", "receipt.py"), "utf8").split("\n");
  const receiptMember = invoicePattern.members.find((member) => member.path === "billing/receipt.py");
  const firstLine = await page.$eval('#detail .member[data-path="billing/receipt.py"] .line', (line) => line.textContent);
  assert.equal(firstLine, `${receiptMember.start_line}${receiptSource[receiptMember.start_line - 1]}\n`);

  await page.screenshot({ path: path.join(artifactsDir, "report.png"), fullPage: false });

  await page.keyboard.press("Escape");
  assert.equal(await page.isVisible("#detail"), false);
});

test("code is shown as text, never as markup", async () => {
  const data = await embeddedData();
  const tablePattern = data.patterns.find((pattern) => pattern.members.some((member) => member.path.startsWith("web/")));
  assert.ok(tablePattern, "the JavaScript pair is a pattern");
  await page.click(`.tile[data-pattern-id="${tablePattern.id}"]`);
  await page.waitForSelector(`#detail[data-pattern-id="${tablePattern.id}"]`, { state: "visible" });
  const code = await page.textContent("#detail pre.code");
  assert.ok(code.includes('("<table class=\\"') && code.includes('</td></tr>");\n'), code);
  assert.equal(await page.$("#detail table"), null, "no element was created from the code");
  await page.click("#detail-close");
  assert.equal(await page.isVisible("#detail"), false);
  assert.deepEqual(consoleErrors, []);
});

test("tiles are drawn a page at a time, and the filter searches every pattern", async () => {
  const data = await embeddedData();
  assert.ok(data.patterns.length >= 3, `the fixture yields three patterns or more, got ${data.patterns.length}`);
  const paged = await context.newPage();
  const errors = [];
  paged.on("pageerror", (error) => errors.push(String(error)));
  // A short viewport, so that the page scrolls.
  await paged.setViewportSize({ width: 400, height: 200 });
  await paged.goto(`${pathToFileURL(reportFile).href}?page-size=1`, { waitUntil: "load" });
  const drawn = () => paged.$$eval("[data-pattern-id].tile", (tiles) => tiles.map((tile) => tile.dataset.patternId));
  assert.deepEqual(await drawn(), [data.patterns[0].id], "the first page holds the first pattern only");
  assert.equal(await paged.textContent("#shown-count"), `${data.patterns.length} of ${data.patterns.length} patterns`);
  assert.match(await paged.textContent("#more"), new RegExp(`\\(${data.patterns.length - 1} not shown yet\\)`));
  // A click through the DOM: a pointer click would scroll first, and scrolling near the
  // end draws a page of its own.
  await paged.$eval("#more", (button) => button.click());
  assert.deepEqual((await drawn()).slice(0, 2), data.patterns.slice(0, 2).map((pattern) => pattern.id), "the next page follows in order");

  // The last pattern is not drawn, yet the filter finds it.
  const last = data.patterns[data.patterns.length - 1];
  await paged.fill("#filter", last.id);
  await paged.waitForFunction(() => new Promise((resolve) => requestAnimationFrame(() => resolve(true))));
  assert.deepEqual(await drawn(), [last.id]);
  assert.equal(await paged.isVisible("#more"), false, "nothing is left to draw");

  // Scrolling to the end draws the next page, until every pattern is drawn.
  const twoFrames = () => paged.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  await paged.evaluate(() => window.scrollTo(0, 0));
  await twoFrames();
  await paged.fill("#filter", "");
  await twoFrames();
  assert.equal((await drawn()).length, 1, "clearing the filter starts again from the first page");
  for (let scrolls = 0; scrolls < 4 * data.patterns.length && (await drawn()).length < data.patterns.length; scrolls += 1) {
    await paged.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    await twoFrames();
    await paged.evaluate(() => window.scrollBy(0, -1));
    await twoFrames();
  }
  assert.deepEqual(await drawn(), data.patterns.map((pattern) => pattern.id));
  assert.deepEqual(errors, []);
  await paged.close();
});

test("a link with a pattern id opens that pattern", async () => {
  const data = await embeddedData();
  const last = data.patterns[data.patterns.length - 1];
  const linked = await context.newPage();
  const errors = [];
  linked.on("pageerror", (error) => errors.push(String(error)));
  await linked.goto(`${pathToFileURL(reportFile).href}#${last.id}`, { waitUntil: "load" });
  await linked.waitForSelector(`#detail[data-pattern-id="${last.id}"]`, { state: "visible" });
  assert.equal(await linked.$$eval("#detail .member", (members) => members.length), Math.min(last.members.length, 6));
  assert.deepEqual(errors, []);
  await linked.close();
});

test("a scan without duplicates gives an empty table that says so", async () => {
  const quietDir = path.join(scratchDir, "no-duplicates");
  fs.mkdirSync(quietDir);
  fs.writeFileSync(path.join(quietDir, "only.py"), "def only():\n    return 1\n");
  const quietReport = path.join(scratchDir, "empty.html");
  execFileSync(periodicBin, ["scan", quietDir, "--format", "html", "--output", quietReport, "--no-index"], {
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 120_000,
  });
  const quiet = await context.newPage();
  const errors = [];
  quiet.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  quiet.on("pageerror", (error) => errors.push(String(error)));
  await quiet.goto(pathToFileURL(quietReport).href, { waitUntil: "load" });
  assert.equal(await quiet.$$eval(".tile", (tiles) => tiles.length), 0);
  assert.equal(await quiet.isVisible("#empty"), true);
  assert.match(await quiet.textContent("#empty"), /No duplicated code/);
  assert.equal(await quiet.textContent("#stat-patterns"), "0");
  assert.deepEqual(errors, []);
  await quiet.close();
});

fs.mkdirSync(artifactsDir, { recursive: true });
