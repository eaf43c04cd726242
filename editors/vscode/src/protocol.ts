// The server's custom requests (`periodic/similar`, `periodic/patterns`) and commands, as plain
// types with validators. Server answers are checked here once, so the VS Code glue can trust them
// and a malformed answer becomes one clear error instead of an exception deep in a UI callback.
// Plain module (no `vscode` import).

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export interface Location {
  uri: string;
  range: Range;
}

export interface SimilarItem extends Location {
  name: string;
  similarity: number;
  kind: string;
  pattern: string;
  repo?: string;
}

export interface SimilarResult {
  unit: { name: string; range: Range } | null;
  similar: SimilarItem[];
}

export interface PatternMember extends Location {
  name: string;
}

export interface PatternSummary {
  id: string;
  name: string;
  kind: string;
  similarity: number;
  memberCount: number;
  duplicatedLines: number;
  languages: string[];
  members: PatternMember[];
}

export const SIMILAR_REQUEST = "periodic/similar";
export const PATTERNS_REQUEST = "periodic/patterns";
/** Executed by the server: `[patternId, name]`. */
export const NAME_PATTERN_COMMAND = "periodic.namePattern";
/** Executed by the server: `[uri, position]`. */
export const SHOW_SIMILAR_COMMAND = "periodic.showSimilar";
/** Executed by the client (code lens): `[uri, position, locations]`. */
export const SHOW_REFERENCES_COMMAND = "periodic.showReferences";

export class ProtocolError extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

export function parsePosition(value: unknown, what: string): Position {
  if (!isRecord(value) || !isNonNegativeInteger(value.line) || !isNonNegativeInteger(value.character)) {
    throw new ProtocolError(`${what} is not a position {line, character}`);
  }
  return { line: value.line, character: value.character };
}

export function parseRange(value: unknown, what: string): Range {
  if (!isRecord(value)) {
    throw new ProtocolError(`${what} is not a range {start, end}`);
  }
  return { start: parsePosition(value.start, `${what}.start`), end: parsePosition(value.end, `${what}.end`) };
}

function parseUri(value: unknown, what: string): string {
  if (typeof value !== "string" || !/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(value)) {
    throw new ProtocolError(`${what} is not a URI`);
  }
  return value;
}

export function parseLocation(value: unknown, what: string): Location {
  if (!isRecord(value)) {
    throw new ProtocolError(`${what} is not a location {uri, range}`);
  }
  return { uri: parseUri(value.uri, `${what}.uri`), range: parseRange(value.range, `${what}.range`) };
}

function stringField(record: Record<string, unknown>, key: string, what: string): string {
  const value = record[key];
  if (typeof value !== "string") {
    throw new ProtocolError(`${what}.${key} is not a string`);
  }
  return value;
}

function numberField(record: Record<string, unknown>, key: string, what: string): number {
  const value = record[key];
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new ProtocolError(`${what}.${key} is not a number`);
  }
  return value;
}

export function parseSimilarResult(value: unknown): SimilarResult {
  if (!isRecord(value) || !Array.isArray(value.similar)) {
    throw new ProtocolError("periodic/similar answer has no `similar` list");
  }
  let unit: SimilarResult["unit"] = null;
  if (value.unit !== null && value.unit !== undefined) {
    if (!isRecord(value.unit)) {
      throw new ProtocolError("periodic/similar answer: `unit` is not an object");
    }
    unit = { name: stringField(value.unit, "name", "unit"), range: parseRange(value.unit.range, "unit.range") };
  }
  const similar = value.similar.map((item: unknown, index): SimilarItem => {
    const what = `similar[${index}]`;
    if (!isRecord(item)) {
      throw new ProtocolError(`${what} is not an object`);
    }
    const location = parseLocation(item, what);
    const parsed: SimilarItem = {
      ...location,
      name: stringField(item, "name", what),
      similarity: numberField(item, "similarity", what),
      kind: stringField(item, "kind", what),
      pattern: stringField(item, "pattern", what),
    };
    if (typeof item.repo === "string") {
      parsed.repo = item.repo;
    }
    return parsed;
  });
  return { unit, similar };
}

export function parsePatterns(value: unknown): PatternSummary[] {
  if (!Array.isArray(value)) {
    throw new ProtocolError("periodic/patterns answer is not a list");
  }
  return value.map((item: unknown, index): PatternSummary => {
    const what = `patterns[${index}]`;
    if (!isRecord(item)) {
      throw new ProtocolError(`${what} is not an object`);
    }
    const members = Array.isArray(item.members) ? item.members : [];
    return {
      id: stringField(item, "id", what),
      name: stringField(item, "name", what),
      kind: stringField(item, "kind", what),
      similarity: numberField(item, "similarity", what),
      memberCount: numberField(item, "memberCount", what),
      duplicatedLines: numberField(item, "duplicatedLines", what),
      languages: Array.isArray(item.languages) ? item.languages.filter((l): l is string => typeof l === "string") : [],
      members: members.map((member: unknown, memberIndex): PatternMember => {
        const memberWhat = `${what}.members[${memberIndex}]`;
        if (!isRecord(member)) {
          throw new ProtocolError(`${memberWhat} is not an object`);
        }
        const name = typeof member.name === "string" ? member.name : "";
        return { ...parseLocation(member, memberWhat), name };
      }),
    };
  });
}
