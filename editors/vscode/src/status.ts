// What the status bar item says: starting, indexing progress from the server's `$/progress`
// (work-done begin/report/end), then the number of patterns in the workspace, or the error.
// Plain module (no `vscode` import): a reducer over events plus a renderer.

export type StatusState =
  | { phase: "starting" }
  | { phase: "indexing"; title: string; message?: string; percentage?: number }
  | { phase: "ready"; patterns?: number }
  | { phase: "stopped"; reason: string };

export type StatusEvent =
  | { type: "starting" }
  | { type: "progress"; value: unknown }
  | { type: "patterns"; count: number }
  | { type: "stopped"; reason: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export function nextStatus(state: StatusState, event: StatusEvent): StatusState {
  switch (event.type) {
    case "starting":
      return { phase: "starting" };
    case "stopped":
      return { phase: "stopped", reason: event.reason };
    case "patterns":
      // A count that arrives while indexing is a partial answer: keep showing progress.
      return state.phase === "indexing" ? state : { phase: "ready", patterns: event.count };
    case "progress": {
      const value = event.value;
      if (!isRecord(value)) {
        return state;
      }
      const message = typeof value.message === "string" ? value.message : undefined;
      const percentage = typeof value.percentage === "number" ? Math.max(0, Math.min(100, value.percentage)) : undefined;
      if (value.kind === "begin") {
        const title = typeof value.title === "string" ? value.title : "Indexing";
        return { phase: "indexing", title, message, percentage };
      }
      if (value.kind === "report") {
        const title = state.phase === "indexing" ? state.title : "Indexing";
        return {
          phase: "indexing",
          title,
          message: message ?? (state.phase === "indexing" ? state.message : undefined),
          percentage: percentage ?? (state.phase === "indexing" ? state.percentage : undefined),
        };
      }
      if (value.kind === "end") {
        return { phase: "ready", patterns: state.phase === "ready" ? state.patterns : undefined };
      }
      return state;
    }
  }
}

export interface StatusView {
  text: string;
  tooltip: string;
  isError: boolean;
}

export function renderStatus(state: StatusState): StatusView {
  switch (state.phase) {
    case "starting":
      return { text: "$(sync~spin) Periodic", tooltip: "Periodic: starting the language server", isError: false };
    case "indexing": {
      const detail = state.message ?? (state.percentage !== undefined ? `${Math.round(state.percentage)}%` : "");
      return {
        text: `$(sync~spin) Periodic${detail === "" ? "" : ` ${detail}`}`,
        tooltip: `Periodic: ${state.title}${detail === "" ? "" : ` (${detail})`}`,
        isError: false,
      };
    }
    case "ready": {
      if (state.patterns === undefined) {
        return { text: "$(symbol-namespace) Periodic", tooltip: "Periodic: click to show patterns", isError: false };
      }
      const noun = state.patterns === 1 ? "pattern" : "patterns";
      return {
        text: `$(symbol-namespace) ${state.patterns} ${noun}`,
        tooltip: `Periodic: ${state.patterns} ${noun} of duplicated code in this workspace; click to show them`,
        isError: false,
      };
    }
    case "stopped":
      return { text: "$(error) Periodic", tooltip: `Periodic: ${state.reason}`, isError: true };
  }
}
