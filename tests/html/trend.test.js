// Drives the HTML page of `periodic trend` in headless Chromium: the test builds a real git
// repository (no copy, a copy committed, a near miss committed, the copy removed), the real
// binary measures its history, and the page must load offline without errors, draw the curve
// through one point per commit (rising, rising, falling), mark the two jumps and name the
// pattern that grew there.
//
// Needs what tests/html/setup.sh installs. PERIODIC_BIN names the binary (default:
// target/debug/periodic under the repository root); CHROMIUM_BIN the browser
// (default /usr/bin/chromium). A screenshot is written to tests/html/artifacts/trend.png.
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
const artifactsDir = path.join(here, "artifacts");
const periodicBin = process.env.PERIODIC_BIN || path.join(repositoryRoot, "target", "debug", "periodic");
const chromiumBin = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

const ORDERS = `def summarize_orders(orders, tax_rate):
    total = 0
    count = 0
    for order in orders:
        if order.status == "paid":
            total += order.amount * (1 + tax_rate)
            count += 1
    average = total / count if count else 0
    return {"total": round(total, 2), "count": count, "average": average}
`;

const ROWS = `def render_rows(rows, width):
    lines = []
    for row in rows:
        if row.visible:
            cells = [str(cell).ljust(width) for cell in row.cells]
            lines.append(" | ".join(cells))
    header = "-" * (width * len(lines))
    return "\\n".join([header] + lines + [header])
`;

const INVOICES = ORDERS.replace("summarize_orders", "collect_invoices").replaceAll("order", "invoice").replace("tax_rate", "vat");
const REFUNDS = ORDERS.replace("summarize_orders", "summarize_refunds").replace("count += 1", "count += 1\n            log(order)");

let scratchDir;
let repository;
let reportFile;
let context;
let page;
const commits = [];
const consoleErrors = [];
const foreignRequests = [];

function git(args, date) {
  return execFileSync("git", args, {
    cwd: repository,
    env: { ...process.env, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date, GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" },
    encoding: "utf8",
  }).trim();
}

function write(relative, text) {
  const file = path.join(repository, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

function commit(message, day) {
  const date = `2024-03-${String(day).padStart(2, "0")}T12:00:00+00:00`;
  git(["add", "-A"], date);
  git(["commit", "-q", "-m", message], date);
  commits.push(git(["rev-parse", "HEAD"], date));
}

before(async () => {
  scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), "periodic-trend-test-"));
  repository = path.join(scratchDir, "shop");
  fs.mkdirSync(repository);
  const start = "2024-03-01T12:00:00+00:00";
  git(["init", "-q", "-b", "main"], start);
  git(["config", "user.email", "dev@example.com"], start);
  git(["config", "user.name", "Dev"], start);
  write(".periodic.toml", "min_lines = 5\nmin_tokens = 30\n");
  write("src/orders.py", ORDERS);
  write("src/rows.py", ROWS);
  commit("orders and rows", 1);
  write("src/invoices.py", INVOICES);
  commit("invoices, copied from orders", 5);
  write("lib/refunds.py", REFUNDS);
  commit("refunds <b>not bold</b>, a near miss", 10);
  fs.rmSync(path.join(repository, "src", "invoices.py"));
  commit("invoices use orders again", 15);

  reportFile = path.join(scratchDir, "trend.html");
  execFileSync(periodicBin, ["trend", repository, "--format", "html", "--output", reportFile, "--quiet"], {
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 120_000,
  });
  assert.ok(fs.statSync(reportFile).size > 0, "the trend wrote a page");

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
    viewport: { width: 1200, height: 900 },
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

/** The commit points as the browser lays them out: commit id and centre, left to right. */
function drawnPoints() {
  return page.$$eval("#trend-chart circle[data-commit]", (circles) =>
    circles.map((circle) => {
      const box = circle.getBoundingClientRect();
      return { commit: circle.dataset.commit, jump: circle.classList.contains("jump"), x: box.x + box.width / 2, y: box.y + box.height / 2 };
    }),
  );
}

test("the page loads offline without console errors", async () => {
  assert.equal(await page.title(), "Duplication trend of shop");
  assert.deepEqual(consoleErrors, []);
  assert.deepEqual(foreignRequests, [], "the page must not load anything");
  assert.match(await page.textContent("p.summary"), /0\.00% -> \d+\.\d\d% \(up \+\d+\.\d\d points\) over 4 commits/);
});

test("the curve passes through one point per commit: up, further up, down", async () => {
  const chart = await page.$("#trend-chart");
  const box = await chart.boundingBox();
  assert.ok(box.width > 400 && box.height > 150, `the chart is drawn at a readable size, got ${box.width}x${box.height}`);
  const points = await drawnPoints();
  assert.deepEqual(points.map((point) => point.commit), commits, "oldest first, left to right");
  for (let index = 1; index < points.length; index += 1) {
    assert.ok(points[index].x > points[index - 1].x, "time runs to the right");
  }
  // Screen y grows downwards: more duplication is higher on the page.
  const [none, copied, nearMiss, removed] = points.map((point) => point.y);
  assert.ok(copied < none && nearMiss < copied && removed > nearMiss, `heights ${[none, copied, nearMiss, removed]}`);
  const curve = await page.getAttribute("#trend-chart polyline.curve", "points");
  assert.equal(curve.trim().split(/\s+/).length, commits.length, "the polyline joins every point");
  const curveBox = await page.$eval("#trend-chart polyline.curve", (line) => {
    const rect = line.getBoundingClientRect();
    return { width: rect.width, height: rect.height };
  });
  assert.ok(curveBox.width > 300 && curveBox.height > 20, "the curve is visible, not collapsed");
});

test("the jumps are marked and name the pattern that grew", async () => {
  const points = await drawnPoints();
  assert.deepEqual(points.map((point) => point.jump), [false, true, true, false]);
  const labels = await page.$$eval("#trend-chart text.jump-label", (texts) => texts.map((text) => text.textContent));
  assert.equal(labels.length, 2);
  const data = await page.evaluate(() => JSON.parse(document.getElementById("trend-data").textContent));
  const grown = data.points[1].grew[0];
  assert.equal(grown.members, 2);
  assert.equal(labels[0], grown.name, "the jump is labelled with the pattern's name");
  const rows = await page.$$eval("#jumps tr[data-commit]", (trs) => trs.map((tr) => ({ commit: tr.dataset.commit, text: tr.textContent })));
  assert.deepEqual(rows.map((row) => row.commit), [commits[1], commits[2]]);
  assert.ok(rows[0].text.includes(grown.id) && rows[0].text.includes("0 → 2 copies"), rows[0].text);
  assert.ok(rows[1].text.includes("refunds <b>not bold</b>, a near miss"), "a subject is shown as text, never as markup");
  assert.equal(await page.$$eval("#jumps b", (bold) => bold.length), 0);
});

test("the table lists every commit, newest first, with the embedded data", async () => {
  const data = await page.evaluate(() => JSON.parse(document.getElementById("trend-data").textContent));
  assert.deepEqual(data.points.map((point) => point.commit), commits);
  const rows = await page.$$eval("#points tr", (trs) => trs.slice(1).map((tr) => tr.querySelector("code").textContent));
  assert.deepEqual(rows, commits.map((commit) => commit.slice(0, 10)).reverse());
  fs.mkdirSync(artifactsDir, { recursive: true });
  await page.screenshot({ path: path.join(artifactsDir, "trend.png"), fullPage: true });
});
