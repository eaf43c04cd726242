// Server path resolution against real files in a temporary directory: the setting wins, then
// PATH, else a message with install instructions.

import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { INSTALL_INSTRUCTIONS, expandConfiguredPath, isExecutableFile, resolveServerPath } from "../serverPath";

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "periodic-vscode-test-"));
}

function writeExecutable(directory: string, name: string, mode = 0o755): string {
  const file = path.join(directory, name);
  fs.writeFileSync(file, "#!/bin/sh\necho periodic 0.0.0\n");
  fs.chmodSync(file, mode);
  return file;
}

test("the configured path wins over PATH", () => {
  const configuredDir = tempDir();
  const pathDir = tempDir();
  const configured = writeExecutable(configuredDir, "my-periodic");
  writeExecutable(pathDir, "periodic");
  const result = resolveServerPath({ configuredPath: configured, envPath: pathDir, platform: "linux" });
  assert.deepEqual(result, { kind: "found", path: configured, source: "setting" });
});

test("periodic is found on PATH, skipping directories without it and non-executable files", () => {
  const empty = tempDir();
  const notExecutable = tempDir();
  writeExecutable(notExecutable, "periodic", 0o644);
  const good = tempDir();
  const binary = writeExecutable(good, "periodic");
  const result = resolveServerPath({ envPath: [empty, notExecutable, "", good].join(":"), platform: "linux" });
  assert.deepEqual(result, { kind: "found", path: binary, source: "PATH" });
});

test("a directory named periodic on PATH does not count", () => {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, "periodic"));
  const result = resolveServerPath({ envPath: dir, platform: "linux" });
  assert.equal(result.kind, "missing");
});

test("nothing found: the message says so and tells how to install", () => {
  const result = resolveServerPath({ envPath: tempDir(), platform: "linux" });
  assert.equal(result.kind, "missing");
  assert.ok(result.kind === "missing" && result.message.includes("not on PATH"));
  assert.ok(result.kind === "missing" && result.message.includes(INSTALL_INSTRUCTIONS));
  assert.match(INSTALL_INSTRUCTIONS, /cargo install --locked --path lsp/);
});

test("a configured path that does not exist is an error naming the setting, not a silent PATH fallback", () => {
  const pathDir = tempDir();
  writeExecutable(pathDir, "periodic");
  const missing = path.join(tempDir(), "nope", "periodic");
  const result = resolveServerPath({ configuredPath: missing, envPath: pathDir, platform: "linux" });
  assert.equal(result.kind, "missing");
  assert.ok(result.kind === "missing" && result.message.includes("periodic.server.path"));
  assert.ok(result.kind === "missing" && result.message.includes(missing));
});

test("relative, ~ and ${workspaceFolder} paths are expanded", () => {
  const workspace = tempDir();
  fs.mkdirSync(path.join(workspace, "target", "debug"), { recursive: true });
  const binary = writeExecutable(path.join(workspace, "target", "debug"), "periodic");
  for (const configured of ["target/debug/periodic", "${workspaceFolder}/target/debug/periodic"]) {
    const result = resolveServerPath({ configuredPath: configured, workspaceFolder: workspace, platform: "linux" });
    assert.deepEqual(result, { kind: "found", path: binary, source: "setting" }, configured);
  }
  assert.equal(expandConfiguredPath("~/bin/periodic", undefined, "/home/dev"), path.join("/home/dev", "bin/periodic"));
});

test("on Windows, PATHEXT names are tried", () => {
  const dir = tempDir();
  const binary = path.join(dir, "periodic.exe");
  fs.writeFileSync(binary, "MZ");
  const result = resolveServerPath({ envPath: dir, envPathExt: ".COM;.EXE", platform: "win32" });
  assert.deepEqual(result, { kind: "found", path: binary, source: "PATH" });
});

test("isExecutableFile checks the execute bit", () => {
  const dir = tempDir();
  assert.equal(isExecutableFile(writeExecutable(dir, "a", 0o755), "linux"), true);
  assert.equal(isExecutableFile(writeExecutable(dir, "b", 0o644), "linux"), false);
  assert.equal(isExecutableFile(path.join(dir, "missing"), "linux"), false);
});

test("a server inside the extension is used before PATH, after the setting", () => {
  const extension = tempDir();
  fs.mkdirSync(path.join(extension, "server"));
  const bundled = writeExecutable(path.join(extension, "server"), "periodic");
  const pathDir = tempDir();
  const onPath = writeExecutable(pathDir, "periodic");
  assert.deepEqual(resolveServerPath({ extensionDir: extension, envPath: pathDir, platform: "linux" }),
    { kind: "found", path: bundled, source: "bundled" });
  const configured = writeExecutable(tempDir(), "mine");
  assert.deepEqual(resolveServerPath({ configuredPath: configured, extensionDir: extension, envPath: pathDir, platform: "linux" }),
    { kind: "found", path: configured, source: "setting" });
  // An extension without a server of its own falls through to PATH.
  assert.deepEqual(resolveServerPath({ extensionDir: tempDir(), envPath: pathDir, platform: "linux" }),
    { kind: "found", path: onPath, source: "PATH" });
});
