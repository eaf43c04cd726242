// Settings → server options mapping: defaults pass through, bad values are dropped with a reason,
// the token only ever comes from the caller (SecretStorage), never from settings.

import { test } from "node:test";
import * as assert from "node:assert/strict";
import { readerFromObject, serverLogLevel, toServerOptions } from "../settings";

const defaults = {
  server: { path: "", logLevel: "info" },
  minLines: 6,
  minTokens: 50,
  similarity: 0.7,
  debounceMs: 150,
  diagnostics: { severity: "information", kinds: { T1: true, T2: true, T3: true } },
  edge: { url: "", share: "locations" },
};

test("default settings map to the documented initializationOptions shape", () => {
  const { options, problems } = toServerOptions(readerFromObject(defaults));
  assert.deepEqual(problems, []);
  assert.deepEqual(options, {
    minLines: 6,
    minTokens: 50,
    similarity: 0.7,
    debounceMs: 150,
    diagnostics: { severity: "information", kinds: { T1: true, T2: true, T3: true } },
    edge: { share: "locations" },
  });
});

test("an empty configuration sends an empty object so the server keeps its defaults", () => {
  const { options, problems } = toServerOptions(readerFromObject({}));
  assert.deepEqual(options, {});
  assert.deepEqual(problems, []);
});

test("changed values and a disabled clone kind are passed on", () => {
  const settings = {
    ...defaults,
    minLines: 10,
    similarity: 0.85,
    debounceMs: 0,
    diagnostics: { severity: "off", kinds: { T1: true, T2: false, T3: true } },
    edge: { url: " https://edge.example.test:8443 ", share: "fingerprints" },
  };
  const { options, problems } = toServerOptions(readerFromObject(settings), "s3cret");
  assert.deepEqual(problems, []);
  assert.equal(options.minLines, 10);
  assert.equal(options.similarity, 0.85);
  assert.equal(options.debounceMs, 0, "zero debounce is valid (benchmarks use it)");
  assert.deepEqual(options.diagnostics, { severity: "off", kinds: { T1: true, T2: false, T3: true } });
  assert.deepEqual(options.edge, { url: "https://edge.example.test:8443", share: "fingerprints", token: "s3cret" });
});

test("invalid values are dropped and each is reported with its key", () => {
  const settings = {
    minLines: 0,
    minTokens: 12.5,
    similarity: 0,
    debounceMs: -1,
    diagnostics: { severity: "loud", kinds: { T1: "yes" } },
    edge: { url: "ftp://nowhere", share: "everything" },
  };
  const { options, problems } = toServerOptions(readerFromObject(settings));
  assert.deepEqual(options, {});
  assert.deepEqual(
    problems.map((problem) => problem.key).sort(),
    ["debounceMs", "diagnostics.kinds.T1", "diagnostics.severity", "edge.share", "edge.url", "minLines", "minTokens", "similarity"],
  );
  for (const problem of problems) {
    assert.match(problem.message, new RegExp(`^periodic\\.${problem.key.replace(/\./g, "\\.")} `));
  }
});

test("a token in settings.json is ignored; only the SecretStorage token is sent", () => {
  const settings = { edge: { url: "https://edge.test", token: "from-settings-json" } };
  const withoutSecret = toServerOptions(readerFromObject(settings));
  assert.deepEqual(withoutSecret.options.edge, { url: "https://edge.test" });
  const withSecret = toServerOptions(readerFromObject(settings), "from-secret-storage");
  assert.equal(withSecret.options.edge?.token, "from-secret-storage");
  const emptySecret = toServerOptions(readerFromObject(settings), "");
  assert.equal(emptySecret.options.edge?.token, undefined);
});

test("readerFromObject reads dotted keys through nested sections", () => {
  const read = readerFromObject({ diagnostics: { kinds: { T3: false } }, minLines: 3 });
  assert.equal(read("diagnostics.kinds.T3"), false);
  assert.equal(read("minLines"), 3);
  assert.equal(read("diagnostics.kinds.T9"), undefined);
  assert.equal(read("minLines.deeper"), undefined);
});

test("similarity 1 is valid, above 1 is not", () => {
  assert.equal(toServerOptions(readerFromObject({ similarity: 1 })).options.similarity, 1);
  assert.deepEqual(toServerOptions(readerFromObject({ similarity: 1.5 })).problems.map((problem) => problem.key), ["similarity"]);
});

test("server log level is passed only when it is a known level", () => {
  assert.equal(serverLogLevel(readerFromObject({ server: { logLevel: "debug" } })), "debug");
  assert.equal(serverLogLevel(readerFromObject({ server: { logLevel: "chatty" } })), undefined);
  assert.equal(serverLogLevel(readerFromObject({})), undefined);
});
