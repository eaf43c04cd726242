// `periodic scan` from the editor: command line, JSON report → patterns with absolute URIs and
// 0-based ranges, and the exit codes that still mean "report written".

import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { parseReport, reportPatterns, runPeriodic, scanArgs, scanFailureMessage, scanSucceeded, summarizeReport } from "../report";

const report = {
  version: "1",
  tool_version: "0.1.0",
  stats: { files: 12, lines: 900, duplicated_lines: 48, duplication_percent: 5.333, patterns: 1 },
  patterns: [
    {
      id: "P-3fa9c2d1",
      name: "parse-config-loop",
      auto_name: "parse-config-loop",
      user_name: null,
      kind: "T2",
      similarity: 0.93,
      languages: ["python"],
      duplicated_lines: 24,
      members: [
        { path: "src/a.py", start_line: 3, end_line: 14, name: "load_config", unit: "function", language: "python" },
        { path: "lib/deep/b.py", start_line: 31, end_line: 42, name: "", unit: "block", language: "python" },
      ],
    },
  ],
  pairs: [],
};

test("scan command line", () => {
  assert.deepEqual(scanArgs("/w", "html", "/tmp/r.html"), ["scan", "/w", "--format", "html", "--output", "/tmp/r.html"]);
});

test("report summary sentence", () => {
  const summary = summarizeReport(parseReport(JSON.stringify(report)));
  assert.equal(summary.patterns, 1);
  assert.equal(summary.text, "Periodic: 1 pattern in 12 files, 48 duplicated lines (5.3%).");
});

test("report members become absolute file URIs with 0-based line ranges", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "periodic-report-"));
  const [pattern] = reportPatterns(parseReport(JSON.stringify(report)), root);
  assert.equal(pattern.id, "P-3fa9c2d1");
  assert.equal(pattern.memberCount, 2);
  assert.deepEqual(pattern.members[0], {
    uri: pathToFileURL(path.join(root, "src", "a.py")).href,
    name: "load_config",
    range: { start: { line: 2, character: 0 }, end: { line: 13, character: 0 } },
  });
  assert.equal(pattern.members[1].uri, pathToFileURL(path.join(root, "lib", "deep", "b.py")).href);
});

test("a broken report is a clear error", () => {
  assert.throws(() => parseReport("{not json"), /not JSON/);
  assert.throws(() => parseReport("{}"), /no `stats` and `patterns`/);
  const bad = { ...report, patterns: [{ id: "P-1", members: [{ path: "a.py" }] }] };
  assert.throws(() => reportPatterns(parseReport(JSON.stringify(bad)), "/w"), /members\[0\] is not a report location/);
});

test("exit 0 and 1 wrote a report; 2 is a failure whose message carries stderr", () => {
  assert.equal(scanSucceeded({ exitCode: 0, stdout: "", stderr: "" }), true);
  assert.equal(scanSucceeded({ exitCode: 1, stdout: "", stderr: "" }), true);
  const failed = { exitCode: 2, stdout: "", stderr: "error: .periodic.toml:3: unknown key `min_line`\n" };
  assert.equal(scanSucceeded(failed), false);
  assert.equal(scanFailureMessage(failed), "periodic scan failed (exit 2): error: .periodic.toml:3: unknown key `min_line`");
});

test("runPeriodic runs a real process and collects its output and exit code", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "periodic-run-"));
  const script = path.join(dir, "fake-cli");
  fs.writeFileSync(script, "#!/bin/sh\necho \"args:$*\"\necho oops >&2\nexit 2\n");
  fs.chmodSync(script, 0o755);
  const result = await runPeriodic(script, ["scan", "."], dir);
  assert.deepEqual(result, { exitCode: 2, stdout: "args:scan .\n", stderr: "oops\n" });
});
