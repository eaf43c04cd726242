// Status bar: starting → indexing progress from `$/progress` → pattern count; stopped on error.

import { test } from "node:test";
import * as assert from "node:assert/strict";
import { StatusEvent, StatusState, nextStatus, renderStatus } from "../status";

function run(events: StatusEvent[]): StatusState {
  return events.reduce<StatusState>(nextStatus, { phase: "starting" });
}

test("indexing progress is shown, then the pattern count", () => {
  let state = run([{ type: "progress", value: { kind: "begin", title: "Indexing", message: "0/120 files", percentage: 0 } }]);
  assert.equal(renderStatus(state).text, "$(sync~spin) Periodic 0/120 files");
  state = nextStatus(state, { type: "progress", value: { kind: "report", message: "60/120 files", percentage: 50 } });
  assert.deepEqual(state, { phase: "indexing", title: "Indexing", message: "60/120 files", percentage: 50 });
  state = nextStatus(state, { type: "patterns", count: 3 });
  assert.equal(state.phase, "indexing", "a count during indexing does not hide the progress");
  state = nextStatus(state, { type: "progress", value: { kind: "end" } });
  assert.equal(renderStatus(state).text, "$(symbol-namespace) Periodic");
  state = nextStatus(state, { type: "patterns", count: 7 });
  assert.equal(renderStatus(state).text, "$(symbol-namespace) 7 patterns");
  assert.equal(renderStatus(nextStatus(state, { type: "patterns", count: 1 })).text, "$(symbol-namespace) 1 pattern");
});

test("a report without a message shows the percentage; without either only the name", () => {
  const begun = run([{ type: "progress", value: { kind: "begin", title: "Indexing" } }]);
  assert.equal(renderStatus(begun).text, "$(sync~spin) Periodic");
  const reported = nextStatus(begun, { type: "progress", value: { kind: "report", percentage: 42.4 } });
  assert.equal(renderStatus(reported).text, "$(sync~spin) Periodic 42%");
});

test("junk progress values leave the state alone", () => {
  const ready = run([{ type: "patterns", count: 2 }]);
  assert.deepEqual(nextStatus(ready, { type: "progress", value: "nonsense" }), ready);
  assert.deepEqual(nextStatus(ready, { type: "progress", value: { kind: "other" } }), ready);
});

test("a stopped server is shown as an error with the reason", () => {
  const view = renderStatus(run([{ type: "stopped", reason: "server not found" }]));
  assert.equal(view.isError, true);
  assert.equal(view.tooltip, "Periodic: server not found");
});
