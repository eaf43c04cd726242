// The VS Code glue: starts `periodic lsp` through vscode-languageclient, passes settings and the
// edge token, registers the commands and the status bar item. No analysis happens here; every
// answer comes from the server. Logic that does not need VS Code lives in the plain modules next
// to this file (settings, serverPath, protocol, commandArgs, report, status) and is unit-tested.

import * as os from "node:os";
import * as path from "node:path";
import * as fs from "node:fs/promises";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  Middleware,
  ServerOptions,
  State,
  TransportKind,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
} from "vscode-languageclient/node";
import { memberPickItems, openableLocations, parseNamePatternArgs, parseShowReferencesArgs, patternPickItems, similarLabel, validatePatternName } from "./commandArgs";
import {
  Location as ProtocolLocation,
  NAME_PATTERN_COMMAND,
  PATTERNS_REQUEST,
  PatternSummary,
  SHOW_REFERENCES_COMMAND,
  SHOW_SIMILAR_COMMAND,
  SIMILAR_REQUEST,
  parseLocation,
  parsePatterns,
  parsePosition,
  parseSimilarResult,
} from "./protocol";
import { parseReport, reportPatterns, runPeriodic, scanArgs, scanFailureMessage, scanSucceeded, summarizeReport } from "./report";
import { resolveServerPath } from "./serverPath";
import { RESTART_SETTINGS, ServerOptions as PeriodicOptions, serverLogLevel, toServerOptions } from "./settings";
import { StatusEvent, StatusState, nextStatus, renderStatus } from "./status";

const TOKEN_SECRET_KEY = "periodic.edge.token";
const LANGUAGES = ["rust", "python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "java", "c", "cpp", "csharp", "ruby"];

let extension: PeriodicExtension | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  extension = new PeriodicExtension(context);
  await extension.start();
}

export async function deactivate(): Promise<void> {
  await extension?.stop();
  extension = undefined;
}

class PeriodicExtension {
  private client: LanguageClient | undefined;
  private serverBinary: string | undefined;
  private readonly output: vscode.OutputChannel;
  private readonly statusItem: vscode.StatusBarItem;
  private status: StatusState = { phase: "starting" };
  private patternCountTimer: NodeJS.Timeout | undefined;
  private lastSettingProblems = "";

  constructor(private readonly context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel("Periodic");
    this.statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 10);
    this.statusItem.command = "periodic.showPatterns";
    context.subscriptions.push(this.output, this.statusItem);
    this.registerCommands();
    context.subscriptions.push(
      vscode.workspace.onDidChangeConfiguration((event) => void this.onConfigurationChanged(event)),
      // With pull diagnostics the server sends no notification after an edit: recount on save.
      vscode.workspace.onDidSaveTextDocument(() => this.schedulePatternCount(1500)),
      context.secrets.onDidChange((event) => {
        if (event.key === TOKEN_SECRET_KEY) {
          void this.pushConfiguration();
        }
      }),
    );
    this.updateStatus({ type: "starting" });
    this.statusItem.show();
  }

  private updateStatus(event: StatusEvent): void {
    this.status = nextStatus(this.status, event);
    const view = renderStatus(this.status);
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    this.statusItem.backgroundColor = view.isError ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
  }

  private settingsReader(): (key: string) => unknown {
    const configuration = vscode.workspace.getConfiguration("periodic");
    return (key: string) => configuration.get(key);
  }

  private async currentOptions(): Promise<PeriodicOptions> {
    const token = await this.context.secrets.get(TOKEN_SECRET_KEY);
    const { options, problems } = toServerOptions(this.settingsReader(), token);
    const problemText = problems.map((problem) => problem.message).join("\n");
    if (problemText !== "" && problemText !== this.lastSettingProblems) {
      void vscode.window.showWarningMessage(problemText);
    }
    this.lastSettingProblems = problemText;
    return options;
  }

  async start(): Promise<void> {
    this.updateStatus({ type: "starting" });
    const folders = vscode.workspace.workspaceFolders?.map((folder) => folder.uri.fsPath) ?? [];
    const resolved = resolveServerPath({
      configuredPath: vscode.workspace.getConfiguration("periodic").get<string>("server.path"),
      envPath: process.env.PATH,
      envPathExt: process.env.PATHEXT,
      platform: process.platform,
      workspaceFolder: folders[0],
      homeDir: os.homedir(),
      extensionDir: this.context.extensionPath,
    });
    if (resolved.kind === "missing") {
      this.serverBinary = undefined;
      this.output.appendLine(resolved.message);
      this.updateStatus({ type: "stopped", reason: "server not found" });
      const choice = await vscode.window.showErrorMessage(resolved.message, "Open Settings", "Show Log");
      if (choice === "Open Settings") {
        await vscode.commands.executeCommand("workbench.action.openSettings", "periodic.server.path");
      } else if (choice === "Show Log") {
        this.output.show();
      }
      return;
    }
    this.serverBinary = resolved.path;
    this.output.appendLine(`Starting ${resolved.path} lsp (found via ${resolved.source})`);

    const logLevel = serverLogLevel(this.settingsReader());
    const env = logLevel === undefined ? { ...process.env } : { ...process.env, PERIODIC_LOG: logLevel };
    const serverOptions: ServerOptions = {
      command: resolved.path,
      args: ["lsp"],
      transport: TransportKind.stdio,
      options: { env },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: LANGUAGES.map((language) => ({ scheme: "file", language })),
      outputChannel: this.output,
      initializationOptions: await this.currentOptions(),
      middleware: this.middleware(),
    };
    const client = new LanguageClient("periodic", "Periodic", serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((change) => {
      if (change.newState === State.Stopped) {
        this.updateStatus({ type: "stopped", reason: "the server stopped; see \"Periodic: Show Server Log\"" });
      }
    });
    try {
      await client.start();
    } catch (error) {
      this.updateStatus({ type: "stopped", reason: `the server failed to start: ${String(error)}` });
      this.output.appendLine(`Failed to start the server: ${String(error)}`);
      return;
    }
    this.trackProgress(client);
    this.updateStatus({ type: "patterns", count: 0 });
    this.schedulePatternCount(0);
  }

  async stop(): Promise<void> {
    if (this.patternCountTimer !== undefined) {
      clearTimeout(this.patternCountTimer);
    }
    const client = this.client;
    this.client = undefined;
    if (client !== undefined && client.isRunning()) {
      await client.stop();
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Indexing progress goes to the status bar instead of a notification the user would dismiss. */
  private trackProgress(client: LanguageClient): void {
    client.onRequest(WorkDoneProgressCreateRequest.type, (params) => {
      const subscription = client.onProgress(WorkDoneProgress.type, params.token, (value) => {
        this.updateStatus({ type: "progress", value });
        if (value.kind === "end") {
          subscription.dispose();
          this.schedulePatternCount(0);
        }
      });
    });
  }

  private schedulePatternCount(delayMs: number): void {
    if (this.patternCountTimer !== undefined) {
      clearTimeout(this.patternCountTimer);
    }
    this.patternCountTimer = setTimeout(() => void this.refreshPatternCount(), delayMs);
  }

  private async refreshPatternCount(): Promise<void> {
    try {
      const patterns = await this.fetchPatterns({});
      this.updateStatus({ type: "patterns", count: patterns.length });
    } catch (error) {
      this.output.appendLine(`Could not count patterns: ${String(error)}`);
    }
  }

  private middleware(): Middleware {
    return {
      executeCommand: async (command, args, next) => {
        if (command === NAME_PATTERN_COMMAND) {
          const completed = await this.completeNamePatternArgs(args);
          return completed === undefined ? undefined : ((await next(command, completed)) as unknown);
        }
        const result: unknown = await next(command, args);
        if (command === SHOW_SIMILAR_COMMAND && Array.isArray(result) && result.length > 0 && args.length >= 2) {
          // The server returned locations instead of opening one itself: show them all.
          const locations = result.map((location: unknown, index) => parseLocation(location, `locations[${index}]`));
          await this.showReferences(String(args[0]), parsePosition(args[1], "position"), locations);
        }
        return result;
      },
      workspace: {
        configuration: async (params, token, next) => {
          const answers = await next(params, token);
          if (!Array.isArray(answers)) {
            return answers;
          }
          const options = await this.currentOptions();
          return params.items.map((item, index): unknown => (item.section === "periodic" ? options : answers[index]));
        },
      },
      handleDiagnostics: (uri, diagnostics, next) => {
        next(uri, diagnostics);
        this.schedulePatternCount(1500);
      },
    };
  }

  private async onConfigurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!event.affectsConfiguration("periodic")) {
      return;
    }
    if (RESTART_SETTINGS.some((setting) => event.affectsConfiguration(setting))) {
      const choice = await vscode.window.showInformationMessage("Periodic: the server setting changed. Restart the server now?", "Restart");
      if (choice === "Restart") {
        await this.restart();
      }
      return;
    }
    await this.pushConfiguration();
  }

  private async pushConfiguration(): Promise<void> {
    const client = this.client;
    if (client === undefined || !client.isRunning()) {
      return;
    }
    const options = await this.currentOptions();
    await client.sendNotification(DidChangeConfigurationNotification.type, { settings: { periodic: options } });
  }

  private runningClient(): LanguageClient | undefined {
    if (this.client === undefined || !this.client.isRunning()) {
      void vscode.window.showWarningMessage("Periodic: the language server is not running. See \"Periodic: Show Server Log\".");
      return undefined;
    }
    return this.client;
  }

  private async fetchPatterns(params: { top?: number; query?: string }): Promise<PatternSummary[]> {
    const client = this.client;
    if (client === undefined || !client.isRunning()) {
      return [];
    }
    return parsePatterns(await client.sendRequest(PATTERNS_REQUEST, params));
  }

  private workspaceFolderPaths(): string[] {
    return vscode.workspace.workspaceFolders?.map((folder) => folder.uri.fsPath) ?? [];
  }

  private toCodeLocation(location: ProtocolLocation): vscode.Location {
    const { start, end } = location.range;
    return new vscode.Location(vscode.Uri.parse(location.uri), new vscode.Range(start.line, start.character, end.line, end.character));
  }

  private async showReferences(uri: string, position: { line: number; character: number }, locations: ProtocolLocation[]): Promise<void> {
    await vscode.commands.executeCommand(
      "editor.action.showReferences",
      vscode.Uri.parse(uri),
      new vscode.Position(position.line, position.character),
      locations.map((location) => this.toCodeLocation(location)),
    );
  }

  private async openLocation(location: ProtocolLocation): Promise<void> {
    const target = this.toCodeLocation(location);
    const editor = await vscode.window.showTextDocument(target.uri, { selection: new vscode.Range(target.range.start, target.range.start) });
    editor.revealRange(target.range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }

  private async pickPatternAndMember(patterns: PatternSummary[], title: string): Promise<void> {
    if (patterns.length === 0) {
      void vscode.window.showInformationMessage("Periodic: no duplicated code patterns found (yet).");
      return;
    }
    const pattern = await vscode.window.showQuickPick(
      patternPickItems(patterns),
      { title, placeHolder: "Pick a pattern to see its copies", matchOnDescription: true, matchOnDetail: true },
    );
    if (pattern === undefined) {
      return;
    }
    const member = await vscode.window.showQuickPick(memberPickItems(pattern.value.members, this.workspaceFolderPaths()), {
      title: `${pattern.label} (${pattern.value.id})`,
      placeHolder: "Pick a copy to open it",
      matchOnDescription: true,
    });
    if (member !== undefined) {
      await this.openLocation(member.value);
    }
  }

  private async completeNamePatternArgs(args: unknown[]): Promise<unknown[] | undefined> {
    let parsed;
    try {
      parsed = parseNamePatternArgs(args);
    } catch (error) {
      void vscode.window.showErrorMessage(`Periodic: ${(error as Error).message}`);
      return undefined;
    }
    let patternId = parsed.patternId;
    if (patternId === undefined) {
      const patterns = await this.fetchPatterns({});
      if (patterns.length === 0) {
        void vscode.window.showInformationMessage("Periodic: there is no pattern to name yet.");
        return undefined;
      }
      const picked = await vscode.window.showQuickPick(patternPickItems(patterns), { title: "Name a pattern", matchOnDescription: true });
      if (picked === undefined) {
        return undefined;
      }
      patternId = picked.value.id;
    }
    const name = parsed.name ?? (await vscode.window.showInputBox({
      title: `Name pattern ${patternId}`,
      prompt: "The name is stored in .periodic.toml and shown in hovers, diagnostics and reports.",
      validateInput: validatePatternName,
    }));
    if (name === undefined) {
      return undefined;
    }
    return [patternId, name.trim()];
  }

  private async pickWorkspaceFolder(purpose: string): Promise<vscode.WorkspaceFolder | undefined> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (folders.length === 0) {
      void vscode.window.showWarningMessage("Periodic: open a folder first.");
      return undefined;
    }
    if (folders.length === 1) {
      return folders[0];
    }
    return vscode.window.showWorkspaceFolderPick({ placeHolder: purpose });
  }

  private requireBinary(): string | undefined {
    if (this.serverBinary === undefined) {
      void vscode.window.showErrorMessage("Periodic: the `periodic` binary was not found. Set periodic.server.path or put it on PATH.");
    }
    return this.serverBinary;
  }

  private async runScan(folder: vscode.WorkspaceFolder, format: "json" | "html", output: string): Promise<boolean> {
    const binary = this.requireBinary();
    if (binary === undefined) {
      return false;
    }
    const args = scanArgs(folder.uri.fsPath, format, output);
    this.output.appendLine(`Running ${binary} ${args.join(" ")}`);
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Periodic: scanning ${folder.name}`, cancellable: true },
      async (_progress, cancellation) => {
        const abort = new AbortController();
        cancellation.onCancellationRequested(() => abort.abort());
        try {
          const result = await runPeriodic(binary, args, folder.uri.fsPath, abort.signal);
          if (result.stderr.trim() !== "") {
            this.output.appendLine(result.stderr.trimEnd());
          }
          if (!scanSucceeded(result)) {
            void vscode.window.showErrorMessage(scanFailureMessage(result), "Show Log").then((choice) => {
              if (choice === "Show Log") {
                this.output.show();
              }
            });
            return false;
          }
          return true;
        } catch (error) {
          if (!abort.signal.aborted) {
            void vscode.window.showErrorMessage(`Periodic: could not run ${binary}: ${String(error)}`);
          }
          return false;
        }
      },
    );
  }

  private async reportPath(folder: vscode.WorkspaceFolder, extension: string): Promise<string> {
    const directory = this.context.globalStorageUri.fsPath;
    await fs.mkdir(directory, { recursive: true });
    const safeName = folder.name.replace(/[^A-Za-z0-9._-]/g, "_");
    return path.join(directory, `report-${safeName}.${extension}`);
  }

  private registerCommands(): void {
    const register = (id: string, handler: (...args: unknown[]) => unknown): void => {
      this.context.subscriptions.push(vscode.commands.registerCommand(id, handler));
    };

    register("periodic.scanWorkspace", async () => {
      const folder = await this.pickWorkspaceFolder("Folder to scan");
      if (folder === undefined) {
        return;
      }
      const output = await this.reportPath(folder, "json");
      if (!(await this.runScan(folder, "json", output))) {
        return;
      }
      try {
        const report = parseReport(await fs.readFile(output, "utf8"));
        const summary = summarizeReport(report);
        const choice = await vscode.window.showInformationMessage(summary.text, "Show Patterns", "Open HTML Report");
        if (choice === "Show Patterns") {
          await this.pickPatternAndMember(reportPatterns(report, folder.uri.fsPath), `Patterns in ${folder.name}`);
        } else if (choice === "Open HTML Report") {
          await vscode.commands.executeCommand("periodic.openHtmlReport");
        }
      } catch (error) {
        void vscode.window.showErrorMessage(`Periodic: ${(error as Error).message}`);
      }
    });

    register("periodic.showPatterns", async () => {
      if (this.runningClient() === undefined) {
        return;
      }
      try {
        await this.pickPatternAndMember(await this.fetchPatterns({}), "Periodic: patterns in this workspace");
      } catch (error) {
        void vscode.window.showErrorMessage(`Periodic: ${(error as Error).message}`);
      }
    });

    register("periodic.findSimilar", async () => {
      const client = this.runningClient();
      const editor = vscode.window.activeTextEditor;
      if (client === undefined || editor === undefined) {
        return;
      }
      try {
        const answer = parseSimilarResult(await client.sendRequest(SIMILAR_REQUEST, {
          textDocument: { uri: client.code2ProtocolConverter.asUri(editor.document.uri) },
          position: client.code2ProtocolConverter.asPosition(editor.selection.active),
        }));
        const unitName = answer.unit?.name ?? "the code at the cursor";
        if (answer.similar.length === 0) {
          void vscode.window.showInformationMessage(`Periodic: nothing similar to ${unitName} was found.`);
          return;
        }
        const local = openableLocations(answer.similar);
        if (local.length > 0) {
          const position = answer.unit?.range.start ?? { line: editor.selection.active.line, character: editor.selection.active.character };
          await this.showReferences(editor.document.uri.toString(), position, local);
          return;
        }
        // Only copies in other repositories (from the team server): list them, they cannot be opened here.
        await vscode.window.showQuickPick(answer.similar.map((item) => similarLabel(item, this.workspaceFolderPaths())), {
          title: `Similar to ${unitName} in other repositories`,
        });
      } catch (error) {
        void vscode.window.showErrorMessage(`Periodic: ${(error as Error).message}`);
      }
    });

    register("periodic.openHtmlReport", async () => {
      const folder = await this.pickWorkspaceFolder("Folder to report on");
      if (folder === undefined) {
        return;
      }
      const output = await this.reportPath(folder, "html");
      if (await this.runScan(folder, "html", output)) {
        await vscode.env.openExternal(vscode.Uri.file(output));
      }
    });

    register("periodic.setPatternName", async (...args: unknown[]) => {
      const client = this.runningClient();
      if (client === undefined) {
        return;
      }
      const completed = await this.completeNamePatternArgs(args);
      if (completed === undefined) {
        return;
      }
      try {
        await client.sendRequest("workspace/executeCommand", { command: NAME_PATTERN_COMMAND, arguments: completed });
        this.schedulePatternCount(0);
      } catch (error) {
        void vscode.window.showErrorMessage(`Periodic: naming the pattern failed: ${(error as Error).message}`);
      }
    });

    register(SHOW_REFERENCES_COMMAND, async (...args: unknown[]) => {
      try {
        const parsed = parseShowReferencesArgs(args);
        await this.showReferences(parsed.uri, parsed.position, parsed.locations);
      } catch (error) {
        void vscode.window.showErrorMessage(`Periodic: ${(error as Error).message}`);
      }
    });

    register("periodic.restartServer", async () => {
      await this.restart();
    });

    register("periodic.showServerLog", () => {
      this.output.show(true);
    });

    register("periodic.setEdgeToken", async () => {
      const token = await vscode.window.showInputBox({
        title: "Periodic: team edge server token",
        prompt: "Stored in VS Code's secret storage, never in settings.json. Leave empty to remove it.",
        password: true,
        ignoreFocusOut: true,
      });
      if (token === undefined) {
        return;
      }
      if (token.trim() === "") {
        await this.context.secrets.delete(TOKEN_SECRET_KEY);
        void vscode.window.showInformationMessage("Periodic: edge token removed.");
      } else {
        await this.context.secrets.store(TOKEN_SECRET_KEY, token.trim());
        void vscode.window.showInformationMessage("Periodic: edge token saved.");
      }
    });

    register("periodic.clearEdgeToken", async () => {
      await this.context.secrets.delete(TOKEN_SECRET_KEY);
      void vscode.window.showInformationMessage("Periodic: edge token removed.");
    });
  }
}
