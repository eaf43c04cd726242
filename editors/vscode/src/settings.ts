// Turns the extension's `periodic.*` settings into the options object the server reads, both as
// `initializationOptions` at start and as `settings.periodic` in `workspace/didChangeConfiguration`.
// Plain module (no `vscode` import) so it can be unit-tested with node's test runner.

export type Severity = "information" | "hint" | "warning" | "error" | "off";
export type ShareLevel = "off" | "fingerprints" | "locations";
export type CloneKind = "T1" | "T2" | "T3";

export const SEVERITIES: readonly Severity[] = ["information", "hint", "warning", "error", "off"];
export const SHARE_LEVELS: readonly ShareLevel[] = ["off", "fingerprints", "locations"];
export const CLONE_KINDS: readonly CloneKind[] = ["T1", "T2", "T3"];

/** The object the server accepts; every field is optional and the server fills in its defaults. */
export interface ServerOptions {
  minLines?: number;
  minTokens?: number;
  similarity?: number;
  debounceMs?: number;
  diagnostics?: {
    severity?: Severity;
    kinds?: Partial<Record<CloneKind, boolean>>;
  };
  edge?: {
    url?: string;
    share?: ShareLevel;
    token?: string;
  };
}

/**
 * Reads one setting below `periodic.` by its dotted key (e.g. `diagnostics.kinds.T1`), the way
 * `vscode.workspace.getConfiguration("periodic").get(key)` does. Returns `undefined` when unset.
 */
export type SettingReader = (key: string) => unknown;

/** A setting the mapping left out because its value could not be used, with the reason. */
export interface SettingProblem {
  key: string;
  message: string;
}

export interface MappedOptions {
  options: ServerOptions;
  problems: SettingProblem[];
}

function positiveInteger(read: SettingReader, key: string, problems: SettingProblem[]): number | undefined {
  const value = read(key);
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    problems.push({ key, message: `periodic.${key} must be a whole number of at least 1; the server default is used` });
    return undefined;
  }
  return value;
}

function nonNegativeInteger(read: SettingReader, key: string, problems: SettingProblem[]): number | undefined {
  const value = read(key);
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    problems.push({ key, message: `periodic.${key} must be a whole number of at least 0; the server default is used` });
    return undefined;
  }
  return value;
}

function oneOf<T extends string>(
  read: SettingReader,
  key: string,
  allowed: readonly T[],
  problems: SettingProblem[],
): T | undefined {
  const value = read(key);
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) {
    return value as T;
  }
  problems.push({ key, message: `periodic.${key} must be one of ${allowed.join(", ")}; the server default is used` });
  return undefined;
}

/**
 * Maps settings to server options. Invalid values are dropped (so the server keeps its default)
 * and reported in `problems`, because one bad setting must not stop the server from starting.
 * The edge token never comes from settings: it is passed in from SecretStorage.
 */
export function toServerOptions(read: SettingReader, edgeToken?: string): MappedOptions {
  const problems: SettingProblem[] = [];
  const options: ServerOptions = {};

  const minLines = positiveInteger(read, "minLines", problems);
  if (minLines !== undefined) {
    options.minLines = minLines;
  }
  const minTokens = positiveInteger(read, "minTokens", problems);
  if (minTokens !== undefined) {
    options.minTokens = minTokens;
  }
  const similarity = read("similarity");
  if (similarity !== undefined && similarity !== null) {
    if (typeof similarity === "number" && similarity > 0 && similarity <= 1) {
      options.similarity = similarity;
    } else {
      problems.push({ key: "similarity", message: "periodic.similarity must be greater than 0 and at most 1; the server default is used" });
    }
  }
  const debounceMs = nonNegativeInteger(read, "debounceMs", problems);
  if (debounceMs !== undefined) {
    options.debounceMs = debounceMs;
  }

  const diagnostics: NonNullable<ServerOptions["diagnostics"]> = {};
  const severity = oneOf(read, "diagnostics.severity", SEVERITIES, problems);
  if (severity !== undefined) {
    diagnostics.severity = severity;
  }
  const kinds: Partial<Record<CloneKind, boolean>> = {};
  for (const kind of CLONE_KINDS) {
    const key = `diagnostics.kinds.${kind}`;
    const enabled = read(key);
    if (typeof enabled === "boolean") {
      kinds[kind] = enabled;
    } else if (enabled !== undefined && enabled !== null) {
      problems.push({ key, message: `periodic.${key} must be true or false; the server default is used` });
    }
  }
  if (Object.keys(kinds).length > 0) {
    diagnostics.kinds = kinds;
  }
  if (Object.keys(diagnostics).length > 0) {
    options.diagnostics = diagnostics;
  }

  const edge: NonNullable<ServerOptions["edge"]> = {};
  const url = read("edge.url");
  if (typeof url === "string" && url.trim() !== "") {
    const trimmed = url.trim();
    if (isHttpUrl(trimmed)) {
      edge.url = trimmed;
    } else {
      problems.push({ key: "edge.url", message: "periodic.edge.url must be an http:// or https:// address; the edge server is not used" });
    }
  }
  const share = oneOf(read, "edge.share", SHARE_LEVELS, problems);
  if (share !== undefined) {
    edge.share = share;
  }
  if (edgeToken !== undefined && edgeToken !== "") {
    edge.token = edgeToken;
  }
  if (Object.keys(edge).length > 0) {
    options.edge = edge;
  }

  return { options, problems };
}

function isHttpUrl(text: string): boolean {
  try {
    const parsed = new URL(text);
    return parsed.protocol === "http:" || parsed.protocol === "https:";
  } catch {
    return false;
  }
}

/** Reads dotted keys out of a nested object, as VS Code returns a configuration section. */
export function readerFromObject(section: unknown): SettingReader {
  return (key: string) => {
    let current: unknown = section;
    for (const part of key.split(".")) {
      if (current === null || typeof current !== "object") {
        return undefined;
      }
      current = (current as Record<string, unknown>)[part];
    }
    return current;
  };
}

/** Settings whose change needs a server restart rather than a configuration notification. */
export const RESTART_SETTINGS: readonly string[] = ["periodic.server.path", "periodic.server.logLevel"];

export const LOG_LEVELS: readonly string[] = ["error", "warn", "info", "debug", "trace"];

/** The `PERIODIC_LOG` value for the server process, or undefined to keep the server default. */
export function serverLogLevel(read: SettingReader): string | undefined {
  const level = read("server.logLevel");
  return typeof level === "string" && LOG_LEVELS.includes(level) ? level : undefined;
}
