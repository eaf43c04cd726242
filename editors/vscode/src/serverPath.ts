// Finds the `periodic` binary: the `periodic.server.path` setting first, then a server shipped
// inside the extension (`server/periodic`, as the release archive's .vsix carries it), then
// `periodic` on PATH, else a message that tells the user how to install it. Plain module (no
// `vscode` import).

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export type ServerPathResult =
  | { kind: "found"; path: string; source: "setting" | "bundled" | "PATH" }
  | { kind: "missing"; message: string };

export interface ResolveInput {
  /** Value of `periodic.server.path`; empty or undefined means "not set". */
  configuredPath?: string;
  /** The PATH environment variable of the extension host. */
  envPath?: string;
  /** `PATHEXT` on Windows (e.g. ".COM;.EXE;.BAT"); ignored elsewhere. */
  envPathExt?: string;
  /** `process.platform`. */
  platform: NodeJS.Platform;
  /** First workspace folder, used to resolve `${workspaceFolder}` and relative paths. */
  workspaceFolder?: string;
  /** The user's home directory, for `~`. */
  homeDir?: string;
  /** The extension's own folder; a server at `server/periodic` in it is used before PATH. */
  extensionDir?: string;
}

export const INSTALL_INSTRUCTIONS =
  "Put the `periodic` binary of a release archive on PATH, or install it with " +
  "`cargo install --locked --path lsp` from a checkout of the Periodic repository " +
  "(or build it with `cargo build --release -p periodic` and point `periodic.server.path` at target/release/periodic), " +
  "then run the command \"Periodic: Restart Server\".";

/** True when `candidate` is a regular file this process may execute. */
export function isExecutableFile(candidate: string, platform: NodeJS.Platform = process.platform): boolean {
  try {
    const stat = fs.statSync(candidate);
    if (!stat.isFile()) {
      return false;
    }
    // Windows has no execute bit; existence of a file with an executable extension is the test.
    if (platform === "win32") {
      return true;
    }
    fs.accessSync(candidate, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Expands `~` and `${workspaceFolder}` and makes a relative path absolute against the workspace. */
export function expandConfiguredPath(configured: string, workspaceFolder?: string, homeDir: string = os.homedir()): string {
  let expanded = configured.trim();
  if (expanded === "~" || expanded.startsWith("~/") || expanded.startsWith("~\\")) {
    expanded = path.join(homeDir, expanded.slice(1));
  }
  if (workspaceFolder !== undefined) {
    expanded = expanded.split("${workspaceFolder}").join(workspaceFolder);
  }
  if (!path.isAbsolute(expanded) && workspaceFolder !== undefined) {
    expanded = path.join(workspaceFolder, expanded);
  }
  return expanded;
}

function executableNames(platform: NodeJS.Platform, envPathExt?: string): string[] {
  if (platform !== "win32") {
    return ["periodic"];
  }
  const extensions = (envPathExt ?? ".COM;.EXE;.BAT;.CMD").split(";").filter((ext) => ext !== "");
  return extensions.map((ext) => `periodic${ext.toLowerCase()}`);
}

/** Resolves the server binary; `isExecutable` is a parameter so callers may restrict what counts. */
export function resolveServerPath(
  input: ResolveInput,
  isExecutable: (candidate: string) => boolean = (candidate) => isExecutableFile(candidate, input.platform),
): ServerPathResult {
  const configured = input.configuredPath?.trim() ?? "";
  if (configured !== "") {
    const candidate = expandConfiguredPath(configured, input.workspaceFolder, input.homeDir);
    if (isExecutable(candidate)) {
      return { kind: "found", path: candidate, source: "setting" };
    }
    return {
      kind: "missing",
      message: `The setting periodic.server.path points to "${candidate}", which is not an executable file. ` +
        "Fix the setting or clear it to use `periodic` from PATH. " + INSTALL_INSTRUCTIONS,
    };
  }

  const names = executableNames(input.platform, input.envPathExt);
  if (input.extensionDir !== undefined) {
    for (const name of names) {
      const candidate = path.join(input.extensionDir, "server", name);
      if (isExecutable(candidate)) {
        return { kind: "found", path: candidate, source: "bundled" };
      }
    }
  }

  const delimiter = input.platform === "win32" ? ";" : ":";
  const directories = (input.envPath ?? "").split(delimiter).filter((dir) => dir !== "");
  for (const directory of directories) {
    for (const name of names) {
      const candidate = path.join(directory, name);
      if (isExecutable(candidate)) {
        return { kind: "found", path: candidate, source: "PATH" };
      }
    }
  }
  return {
    kind: "missing",
    message: "The Periodic language server (`periodic`) was not found: periodic.server.path is not set, " +
      "the extension carries no server of its own, and `periodic` is not on PATH. " +
      INSTALL_INSTRUCTIONS,
  };
}
