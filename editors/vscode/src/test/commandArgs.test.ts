// Command argument handling: code lens `periodic.showReferences`, `periodic.namePattern` in its
// three call shapes, server answers to `periodic/similar` and `periodic/patterns`, pick labels.

import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import {
  displayPath,
  memberPickItems,
  openableLocations,
  parseNamePatternArgs,
  parseShowReferencesArgs,
  patternPickItems,
  similarLabel,
  validatePatternName,
} from "../commandArgs";
import { ProtocolError, parsePatterns, parseSimilarResult } from "../protocol";

const root = path.resolve("/work/project");
const uriA = pathToFileURL(path.join(root, "src", "a.py")).href;
const uriB = pathToFileURL(path.join(root, "src", "b.py")).href;
const range = (startLine: number, endLine: number) => ({ start: { line: startLine, character: 0 }, end: { line: endLine, character: 0 } });

test("showReferences args from a code lens are parsed", () => {
  const parsed = parseShowReferencesArgs([uriA, { line: 3, character: 4 }, [{ uri: uriB, range: range(10, 20) }]]);
  assert.equal(parsed.uri, uriA);
  assert.deepEqual(parsed.position, { line: 3, character: 4 });
  assert.deepEqual(parsed.locations, [{ uri: uriB, range: range(10, 20) }]);
});

test("malformed showReferences args are rejected with a message naming the bad part", () => {
  assert.throws(() => parseShowReferencesArgs([uriA]), /expects \[uri, position, locations\]/);
  assert.throws(() => parseShowReferencesArgs([42, { line: 0, character: 0 }, []]), /first argument is not a URI/);
  assert.throws(() => parseShowReferencesArgs([uriA, { line: -1, character: 0 }, []]), /position is not a position/);
  assert.throws(() => parseShowReferencesArgs([uriA, { line: 0, character: 0 }, {}]), /not a list of locations/);
  assert.throws(
    () => parseShowReferencesArgs([uriA, { line: 0, character: 0 }, [{ uri: "not a uri", range: range(1, 2) }]]),
    (error: unknown) => error instanceof ProtocolError && /locations\[0\]\.uri is not a URI/.test(error.message),
  );
});

test("namePattern args: complete, from a code action (id only), from the palette (none)", () => {
  assert.deepEqual(parseNamePatternArgs(["P-3fa9c2d1", " parse-config "]), { patternId: "P-3fa9c2d1", name: "parse-config" });
  assert.deepEqual(parseNamePatternArgs(["P-3fa9c2d1"]), { patternId: "P-3fa9c2d1" });
  assert.deepEqual(parseNamePatternArgs(["P-3fa9c2d1", "   "]), { patternId: "P-3fa9c2d1" });
  assert.deepEqual(parseNamePatternArgs([]), {});
  assert.throws(() => parseNamePatternArgs([{ id: "P-1" }]), /not a pattern id/);
});

test("pattern names are validated", () => {
  assert.equal(validatePatternName("retry-with-backoff"), undefined);
  assert.match(validatePatternName("  ") ?? "", /empty/);
  assert.match(validatePatternName("x".repeat(81)) ?? "", /80 characters/);
  assert.match(validatePatternName("two\nlines") ?? "", /single line/);
});

test("periodic/similar answers are validated and keep repo for remote copies", () => {
  const answer = parseSimilarResult({
    unit: { name: "load_config", range: range(2, 12) },
    similar: [
      { uri: uriB, range: range(30, 41), name: "read_config", similarity: 0.92, kind: "T3", pattern: "P-3fa9c2d1" },
      { uri: "file:///elsewhere/x.py", range: range(1, 9), name: "cfg", similarity: 0.8, kind: "T2", pattern: "P-3fa9c2d1", repo: "team/api" },
    ],
  });
  assert.equal(answer.unit?.name, "load_config");
  assert.equal(answer.similar.length, 2);
  assert.equal(answer.similar[1].repo, "team/api");
  assert.deepEqual(openableLocations(answer.similar), [{ uri: uriB, range: range(30, 41) }]);
  assert.equal(similarLabel(answer.similar[0], [root]), "read_config  src/b.py:31  92% T3  P-3fa9c2d1");
  assert.equal(similarLabel(answer.similar[1], [root]), "cfg  team/api: /elsewhere/x.py:2  80% T2  P-3fa9c2d1");
});

test("a similar answer with no unit at the cursor is valid; a broken one is not", () => {
  assert.deepEqual(parseSimilarResult({ unit: null, similar: [] }), { unit: null, similar: [] });
  assert.throws(() => parseSimilarResult({ unit: null }), /no `similar` list/);
  assert.throws(() => parseSimilarResult({ similar: [{ uri: uriB, range: range(1, 2), name: "f", kind: "T1", pattern: "P-1" }] }), /similarity is not a number/);
});

test("periodic/patterns answers become pick items; members open at their ranges", () => {
  const patterns = parsePatterns([
    {
      id: "P-3fa9c2d1",
      name: "parse-config-loop",
      kind: "T2",
      similarity: 0.9,
      memberCount: 2,
      duplicatedLines: 24,
      languages: ["python"],
      members: [
        { uri: uriA, range: range(2, 13), name: "load_config" },
        { uri: uriB, range: range(30, 41), name: "" },
      ],
    },
  ]);
  const [item] = patternPickItems(patterns);
  assert.equal(item.label, "parse-config-loop");
  assert.equal(item.description, "P-3fa9c2d1 · T2 · 90%");
  assert.equal(item.detail, "2 copies · 24 duplicated lines · python");
  const members = memberPickItems(item.value.members, [root]);
  assert.deepEqual(members.map((member) => [member.label, member.description, member.detail]), [
    ["load_config", "src/a.py:3", "lines 3–14"],
    ["(block)", "src/b.py:31", "lines 31–42"],
  ]);
  assert.throws(() => parsePatterns({}), /not a list/);
  assert.throws(() => parsePatterns([{ id: "P-1", name: "x", kind: "T1", similarity: 1, memberCount: "2", duplicatedLines: 1 }]), /memberCount/);
});

test("displayPath is relative inside a workspace folder and absolute outside", () => {
  assert.equal(displayPath(uriA, [root]), "src/a.py");
  assert.equal(displayPath(pathToFileURL("/other/file.rs").href, [root]), path.resolve("/other/file.rs"));
  assert.equal(displayPath("untitled:Untitled-1", [root]), "untitled:Untitled-1");
});
