// Argument handling for the extension's commands: what the server sends in code lenses and code
// actions, what the command palette passes (nothing), and the labels shown in quick picks.
// Plain module (no `vscode` import): the glue in extension.ts only converts these to VS Code types.

import * as path from "node:path";
import { fileURLToPath } from "node:url";
import {
  Location,
  PatternMember,
  PatternSummary,
  Position,
  ProtocolError,
  SimilarItem,
  parseLocation,
  parsePosition,
} from "./protocol";

export interface ShowReferencesArgs {
  uri: string;
  position: Position;
  locations: Location[];
}

/** `periodic.showReferences` from a code lens: `[uri, position, locations]`. */
export function parseShowReferencesArgs(args: readonly unknown[]): ShowReferencesArgs {
  if (args.length < 3) {
    throw new ProtocolError(`periodic.showReferences expects [uri, position, locations], got ${args.length} argument(s)`);
  }
  const [uri, position, locations] = args;
  if (typeof uri !== "string") {
    throw new ProtocolError("periodic.showReferences: the first argument is not a URI");
  }
  if (!Array.isArray(locations)) {
    throw new ProtocolError("periodic.showReferences: the third argument is not a list of locations");
  }
  return {
    uri,
    position: parsePosition(position, "periodic.showReferences position"),
    locations: locations.map((location, index) => parseLocation(location, `periodic.showReferences locations[${index}]`)),
  };
}

export interface NamePatternArgs {
  patternId?: string;
  name?: string;
}

/**
 * `periodic.namePattern` arrives as `[patternId, name]` (complete), `[patternId]` (from a code
 * action: the name is asked for) or `[]` (from the palette: the pattern is picked, then named).
 */
export function parseNamePatternArgs(args: readonly unknown[]): NamePatternArgs {
  const parsed: NamePatternArgs = {};
  const [patternId, name] = args;
  if (typeof patternId === "string" && patternId.trim() !== "") {
    parsed.patternId = patternId.trim();
  } else if (patternId !== undefined && patternId !== null) {
    throw new ProtocolError("periodic.namePattern: the first argument is not a pattern id");
  }
  if (typeof name === "string" && name.trim() !== "") {
    parsed.name = name.trim();
  }
  return parsed;
}

/** Why a pattern name cannot be used, or undefined when it can. */
export function validatePatternName(name: string): string | undefined {
  const trimmed = name.trim();
  if (trimmed === "") {
    return "A pattern name cannot be empty.";
  }
  if (trimmed.length > 80) {
    return "A pattern name has at most 80 characters.";
  }
  if (/[\r\n\t]/.test(trimmed)) {
    return "A pattern name is a single line.";
  }
  return undefined;
}

/** Shows a URI relative to the workspace folder when it is inside it, else as a file path. */
export function displayPath(uri: string, workspaceFolders: readonly string[] = []): string {
  let filePath: string;
  try {
    filePath = uri.startsWith("file:") ? fileURLToPath(uri) : uri;
  } catch {
    filePath = uri;
  }
  for (const folder of workspaceFolders) {
    const relative = path.relative(folder, filePath);
    if (relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative)) {
      return relative.split(path.sep).join("/");
    }
  }
  return filePath;
}

export function percent(similarity: number): string {
  return `${Math.round(similarity * 100)}%`;
}

export interface PickItemData<T> {
  label: string;
  description: string;
  detail: string;
  value: T;
}

export function patternPickItems(patterns: readonly PatternSummary[]): PickItemData<PatternSummary>[] {
  return patterns.map((pattern) => ({
    label: pattern.name === "" ? pattern.id : pattern.name,
    description: `${pattern.id} · ${pattern.kind} · ${percent(pattern.similarity)}`,
    detail: `${pattern.memberCount} copies · ${pattern.duplicatedLines} duplicated lines` +
      (pattern.languages.length > 0 ? ` · ${pattern.languages.join(", ")}` : ""),
    value: pattern,
  }));
}

export function memberPickItems(
  members: readonly PatternMember[],
  workspaceFolders: readonly string[] = [],
): PickItemData<PatternMember>[] {
  return members.map((member) => ({
    label: member.name === "" ? "(block)" : member.name,
    description: `${displayPath(member.uri, workspaceFolders)}:${member.range.start.line + 1}`,
    detail: `lines ${member.range.start.line + 1}–${member.range.end.line + 1}`,
    value: member,
  }));
}

/** One line per similar unit, e.g. `parse_config  src/a.py:12  92% T2  P-3fa9c2d1`. */
export function similarLabel(item: SimilarItem, workspaceFolders: readonly string[] = []): string {
  const where = item.repo !== undefined ? `${item.repo}: ${displayPath(item.uri, workspaceFolders)}` : displayPath(item.uri, workspaceFolders);
  return `${item.name === "" ? "(block)" : item.name}  ${where}:${item.range.start.line + 1}  ${percent(item.similarity)} ${item.kind}  ${item.pattern}`;
}

/** Local copies can be opened; copies in other repositories (from the edge server) may not exist here. */
export function openableLocations(items: readonly SimilarItem[]): Location[] {
  return items.filter((item) => item.repo === undefined).map((item) => ({ uri: item.uri, range: item.range }));
}
