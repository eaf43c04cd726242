// Running `periodic scan` from the editor: the command line, and reading its JSON report into the
// same pattern shape the server's `periodic/patterns` returns, so one quick pick shows both.
// Plain module (no `vscode` import).

import { spawn } from "node:child_process";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { PatternSummary, ProtocolError } from "./protocol";

export type ReportFormat = "text" | "json" | "sarif" | "html";

export function scanArgs(root: string, format: ReportFormat, output: string): string[] {
  return ["scan", root, "--format", format, "--output", output];
}

export interface ReportSummary {
  files: number;
  patterns: number;
  duplicatedLines: number;
  duplicationPercent: number;
  /** One sentence for a notification. */
  text: string;
}

interface ReportLocation {
  path: string;
  start_line: number;
  end_line: number;
  name?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function num(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

function parseReportLocation(value: unknown, what: string): ReportLocation {
  if (!isRecord(value) || typeof value.path !== "string" || typeof value.start_line !== "number" || typeof value.end_line !== "number") {
    throw new ProtocolError(`${what} is not a report location {path, start_line, end_line}`);
  }
  return {
    path: value.path,
    start_line: value.start_line,
    end_line: value.end_line,
    name: typeof value.name === "string" ? value.name : "",
  };
}

export function parseReport(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ProtocolError(`the scan report is not JSON: ${(error as Error).message}`);
  }
  if (!isRecord(parsed) || !Array.isArray(parsed.patterns) || !isRecord(parsed.stats)) {
    throw new ProtocolError("the scan report has no `stats` and `patterns`");
  }
  return parsed;
}

export function summarizeReport(report: Record<string, unknown>): ReportSummary {
  const stats = isRecord(report.stats) ? report.stats : {};
  const patterns = Array.isArray(report.patterns) ? report.patterns.length : 0;
  const files = num(stats.files);
  const duplicatedLines = num(stats.duplicated_lines);
  const duplicationPercent = num(stats.duplication_percent);
  const text = `Periodic: ${patterns} pattern${patterns === 1 ? "" : "s"} in ${files} file${files === 1 ? "" : "s"}, ` +
    `${duplicatedLines} duplicated lines (${duplicationPercent.toFixed(1)}%).`;
  return { files, patterns, duplicatedLines, duplicationPercent, text };
}

/** Report paths are relative to the scan root with `/` separators and 1-based inclusive lines. */
export function reportPatterns(report: Record<string, unknown>, root: string): PatternSummary[] {
  const patterns = Array.isArray(report.patterns) ? report.patterns : [];
  return patterns.map((pattern: unknown, index): PatternSummary => {
    const what = `patterns[${index}]`;
    if (!isRecord(pattern) || typeof pattern.id !== "string") {
      throw new ProtocolError(`${what} has no id`);
    }
    const members = (Array.isArray(pattern.members) ? pattern.members : []).map((member: unknown, memberIndex) => {
      const location = parseReportLocation(member, `${what}.members[${memberIndex}]`);
      const absolute = path.join(root, ...location.path.split("/"));
      return {
        uri: pathToFileURL(absolute).href,
        name: location.name ?? "",
        range: {
          start: { line: Math.max(0, location.start_line - 1), character: 0 },
          end: { line: Math.max(0, location.end_line - 1), character: 0 },
        },
      };
    });
    return {
      id: pattern.id,
      name: typeof pattern.name === "string" ? pattern.name : pattern.id,
      kind: typeof pattern.kind === "string" ? pattern.kind : "",
      similarity: num(pattern.similarity),
      memberCount: members.length,
      duplicatedLines: num(pattern.duplicated_lines),
      languages: Array.isArray(pattern.languages) ? pattern.languages.filter((l): l is string => typeof l === "string") : [],
      members,
    };
  });
}

export interface RunResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the binary and collects its output. Exit code 1 means "a threshold was exceeded" and
 * still wrote the report, so callers decide what counts as failure (only 2 and signals do).
 */
export function runPeriodic(binary: string, args: readonly string[], cwd: string, signal?: AbortSignal): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { cwd, signal, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (exitCode) => resolve({ exitCode, stdout, stderr }));
  });
}

/** A scan succeeded when the report was written: exit 0 (ok) or 1 (threshold exceeded). */
export function scanSucceeded(result: RunResult): boolean {
  return result.exitCode === 0 || result.exitCode === 1;
}

export function scanFailureMessage(result: RunResult): string {
  const detail = result.stderr.trim().split("\n").slice(-5).join("\n");
  return `periodic scan failed (exit ${result.exitCode ?? "signal"})${detail === "" ? "" : `: ${detail}`}`;
}
