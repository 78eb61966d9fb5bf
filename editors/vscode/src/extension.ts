// The VS Code side: starts `cyclefix serve --stdio` with vscode-languageclient and wires the
// settings, the palette commands, progress and the diff view. The logic lives in ./logic.

import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  LanguageClientOptions,
  Middleware,
  ServerOptions,
  State,
} from "vscode-languageclient/node";

import {
  CrashPolicy,
  FilePatch,
  ProgressValue,
  ServerCommand,
  applyPatch,
  commandArguments,
  describeCommand,
  findOnPath,
  findProjectRoot,
  isInteractiveCall,
  isServerCommand,
  parseDiffFileName,
  parseUnifiedDiff,
  progressText,
  resolveServerCommand,
  serverSettings,
  settingRemovedSinceStart,
  startFailureMessage,
  summarizeResult,
} from "./logic";

const FIX_SCHEME = "cyclefix-fix";

let client: LanguageClient | undefined;
let output: vscode.LogOutputChannel;
let statusItem: vscode.StatusBarItem;
let currentCommand: ServerCommand | undefined;
let settingsAtStart: Record<string, unknown> = {};
let initialized = false;
let startErrorShown = false;
let crashPolicy = new CrashPolicy();
const fixedTexts = new Map<string, string>();
const fixChanged = new vscode.EventEmitter<vscode.Uri>();
const progressTitles = new Map<string | number, string | undefined>();

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function currentServerSettings(): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration("cyclefix");
  return serverSettings((key) => config.inspect(key));
}

/** The interpreter selected in the Python extension, when that extension is installed. */
async function selectedPython(): Promise<string | undefined> {
  const extension = vscode.extensions.getExtension("ms-python.python");
  if (extension === undefined) {
    return undefined;
  }
  try {
    const api = extension.isActive ? extension.exports : await extension.activate();
    const resource = vscode.workspace.workspaceFolders?.[0]?.uri;
    const env = api?.environments?.getActiveEnvironmentPath?.(resource);
    if (env && typeof env.path === "string" && env.path) {
      return env.path;
    }
    const details = api?.settings?.getExecutionDetails?.(resource);
    const exec = details?.execCommand;
    return Array.isArray(exec) && typeof exec[0] === "string" ? exec[0] : undefined;
  } catch (error) {
    output.warn(`could not ask the Python extension for its interpreter: ${error}`);
    return undefined;
  }
}

function activeFileUri(): string | undefined {
  const document = vscode.window.activeTextEditor?.document;
  return document !== undefined && document.uri.scheme === "file"
    ? document.uri.toString()
    : undefined;
}

function setStatus(text: string, tooltip: string, error = false): void {
  statusItem.text = text;
  statusItem.tooltip = tooltip;
  statusItem.backgroundColor = error
    ? new vscode.ThemeColor("statusBarItem.errorBackground")
    : undefined;
  statusItem.show();
}

/** One error per start attempt, with the actions that help. */
function showStartError(message: string): void {
  if (startErrorShown) {
    return;
  }
  startErrorShown = true;
  setStatus("$(error) cyclefix", message, true);
  void vscode.window
    .showErrorMessage(message, "Open Settings", "Show Output")
    .then((choice) => {
      if (choice === "Open Settings") {
        void vscode.commands.executeCommand("workbench.action.openSettings", "cyclefix.serverCommand");
      } else if (choice === "Show Output") {
        output.show();
      }
    });
}

// ----------------------------------------------------------------------------- diff view

/** The project folder of a diff, searched from the open files and the workspace folders. */
function projectRootFor(patches: FilePatch[], rootName: string): string | undefined {
  const candidates: string[] = [];
  const active = vscode.window.activeTextEditor?.document.uri;
  if (active?.scheme === "file") {
    candidates.push(path.dirname(active.fsPath));
  }
  for (const document of vscode.workspace.textDocuments) {
    if (document.uri.scheme === "file") {
      candidates.push(path.dirname(document.uri.fsPath));
    }
  }
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    candidates.push(folder.uri.fsPath);
  }
  return findProjectRoot(
    patches.map((patch) => patch.path),
    rootName,
    candidates,
    (file) => fs.existsSync(file),
  );
}

/**
 * Open the server's diff file as VS Code diff views (file on the left, the verified fix on the
 * right); false when that cannot be done, so the caller can open the .diff file instead.
 */
async function openFixDiff(diffUri: vscode.Uri): Promise<boolean> {
  const names = parseDiffFileName(diffUri.fsPath);
  if (diffUri.scheme !== "file" || names === undefined) {
    return false;
  }
  try {
    const patches = parseUnifiedDiff(fs.readFileSync(diffUri.fsPath, "utf8"));
    if (patches.length === 0) {
      return false;
    }
    const root = projectRootFor(patches, names.rootName);
    if (root === undefined) {
      output.warn(`showDiff: no open folder named ${names.rootName} holds ${patches[0].path}`);
      return false;
    }
    for (const patch of patches) {
      const fileUri = vscode.Uri.file(path.join(root, patch.path));
      const document = await vscode.workspace.openTextDocument(fileUri);
      const fixed = applyPatch(document.getText(), patch);
      const fixedUri = vscode.Uri.from({
        scheme: FIX_SCHEME,
        path: fileUri.path,
        query: names.fixId,
      });
      fixedTexts.set(fixedUri.toString(), fixed);
      fixChanged.fire(fixedUri);
      await vscode.commands.executeCommand(
        "vscode.diff",
        fileUri,
        fixedUri,
        `${path.basename(patch.path)}: current ↔ verified fix (${names.fixId})`,
        { preview: patches.length === 1 },
      );
    }
    return true;
  } catch (error) {
    output.warn(`showDiff: cannot show ${diffUri.fsPath} as a diff view: ${error}`);
    return false;
  }
}

// ----------------------------------------------------------------------------- client

/**
 * languageclient always notifies "couldn't create connection to server" when a start fails;
 * the extension says it instead, once, with the command it ran and what to do. It stays in
 * the output channel.
 */
class CyclefixClient extends LanguageClient {
  override error(message: string, data?: unknown, showNotification: boolean | "force" = true): void {
    if (message.includes("couldn't create connection to server")) {
      showNotification = false;
    }
    super.error(message, data, showNotification);
  }
}

/** The program of a command exists (a bare name: somewhere on PATH; relative: from cwd). */
function programExists(program: string, cwd: string | undefined): boolean {
  if (path.isAbsolute(program)) {
    return isExecutable(program);
  }
  if (program.includes("/") || program.includes("\\")) {
    return isExecutable(path.resolve(cwd ?? process.cwd(), program));
  }
  return findOnPath(program, process.env.PATH, process.platform, isExecutable) !== undefined;
}

function middleware(): Middleware {
  return {
    // Palette calls carry no arguments: target the active file, and say what happened.
    executeCommand: async (command, args, next) => {
      if (!isServerCommand(command)) {
        return next(command, args);
      }
      const interactive = isInteractiveCall(args);
      const sent = commandArguments(command, args, activeFileUri());
      let result: unknown;
      output.debug(`${command} ${JSON.stringify(sent)}`);
      try {
        result = await next(command, sent);
      } catch (error) {
        output.debug(`${command} failed: ${error}`);
        return undefined; // languageclient already showed the server's error
      }
      output.debug(`${command} -> ${JSON.stringify(result)}`);
      if (interactive) {
        const summary = summarizeResult(command, result);
        if (summary !== undefined) {
          void vscode.window.showInformationMessage(summary);
        }
      }
      return result;
    },
    window: {
      // The server's showDiff opens its .diff file: show a real diff view instead.
      showDocument: async (params, token, next) => {
        const uri = vscode.Uri.parse(params.uri);
        output.debug(`showDocument ${params.uri}`);
        if (await openFixDiff(uri)) {
          return { success: true };
        }
        return next(params, token);
      },
    },
    workspace: {
      // Only pulled when a notification is empty; answer with the server's keys only.
      configuration: async (params, token, next) => {
        const answer = await next(params, token);
        if (!Array.isArray(answer)) {
          return answer;
        }
        return params.items.map((item, index) =>
          item.section === "cyclefix" ? currentServerSettings() : answer[index],
        );
      },
    },
    handleWorkDoneProgress: (token, params, next) => {
      const value = params as ProgressValue;
      if (value.kind === "begin") {
        progressTitles.set(token, value.title);
      }
      const text = progressText(value, progressTitles.get(token));
      if (text === undefined) {
        progressTitles.delete(token);
      }
      if (text === undefined && progressTitles.size === 0) {
        setStatus("$(beaker) cyclefix", `cyclefix: ready (${currentCommand ? describeCommand(currentCommand) : ""})`);
      } else if (text !== undefined) {
        setStatus(text, "cyclefix is working; cancel with \"cyclefix: Cancel the run or refinement\"");
      }
      next(token, params);
    },
  };
}

async function startClient(context: vscode.ExtensionContext): Promise<void> {
  const config = vscode.workspace.getConfiguration("cyclefix");
  const resolution = resolveServerCommand({
    serverCommand: config.get("serverCommand"),
    python: config.get("python"),
    selectedPython: await selectedPython(),
    pathEnv: process.env.PATH,
    isExecutable,
  });
  startErrorShown = false;
  if ("error" in resolution) {
    currentCommand = undefined;
    const tried = resolution.tried.length > 0 ? ` (tried ${resolution.tried.join(", ")})` : "";
    showStartError(startFailureMessage(undefined, resolution.error + tried));
    return;
  }
  currentCommand = resolution;
  const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!programExists(resolution.command, cwd)) {
    showStartError(
      startFailureMessage(resolution, `${resolution.command} does not exist or is not executable`),
    );
    return;
  }
  output.info(`starting ${describeCommand(resolution)} (from ${resolution.source})`);
  setStatus("$(sync~spin) cyclefix", `starting ${describeCommand(resolution)}`);

  const serverOptions: ServerOptions = {
    command: resolution.command,
    args: resolution.args,
    // No `transport`: languageclient would append a second --stdio; the args say it already.
    options: { cwd },
  };
  settingsAtStart = currentServerSettings();
  initialized = false;
  crashPolicy = new CrashPolicy();
  const command = resolution;
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file", language: "python" }],
    initializationOptions: settingsAtStart,
    outputChannel: output,
    middleware: middleware(),
    initializationFailedHandler: (error) => {
      showStartError(startFailureMessage(command, String(error?.message ?? error)));
      return false;
    },
    errorHandler: {
      error: () => ({ action: ErrorAction.Continue }),
      closed: () => {
        if (crashPolicy.shouldRestart(Date.now(), initialized)) {
          return { action: CloseAction.Restart, message: "cyclefix: the server stopped; restarting it" };
        }
        const reason = initialized
          ? "it stopped 3 times in 3 minutes"
          : "it exited before answering (see the cyclefix output for its error)";
        showStartError(startFailureMessage(command, reason));
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    },
  };
  const newClient = new CyclefixClient("cyclefix", "cyclefix", serverOptions, clientOptions);
  client = newClient;
  context.subscriptions.push(
    newClient.onDidChangeState((event) => {
      const running = event.newState === State.Running;
      void vscode.commands.executeCommand("setContext", "cyclefix.serverRunning", running);
      if (running) {
        initialized = true;
        setStatus("$(beaker) cyclefix", `cyclefix: ready (${describeCommand(command)})`);
      }
    }),
  );
  try {
    await newClient.start();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    output.error(`start failed: ${reason}`);
    showStartError(startFailureMessage(command, reason));
  }
}

async function stopClient(): Promise<void> {
  const old = client;
  client = undefined;
  if (old !== undefined && old.state !== State.Stopped) {
    try {
      await old.stop(5000);
    } catch (error) {
      output.warn(`stopping the server: ${error}`);
    }
  }
  if (old !== undefined) {
    await old.dispose().catch(() => undefined);
  }
}

async function restart(context: vscode.ExtensionContext): Promise<void> {
  await stopClient();
  await startClient(context);
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel("cyclefix", { log: true });
  statusItem = vscode.window.createStatusBarItem("cyclefix.status", vscode.StatusBarAlignment.Left, 0);
  statusItem.name = "cyclefix";
  statusItem.command = "cyclefix.showOutput";
  context.subscriptions.push(
    output,
    statusItem,
    fixChanged,
    vscode.workspace.registerTextDocumentContentProvider(FIX_SCHEME, {
      onDidChange: fixChanged.event,
      provideTextDocumentContent: (uri) => fixedTexts.get(uri.toString()) ?? "",
    }),
    vscode.commands.registerCommand("cyclefix.restartServer", () => restart(context)),
    vscode.commands.registerCommand("cyclefix.showOutput", () => output.show()),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration("cyclefix")) {
        return;
      }
      if (
        event.affectsConfiguration("cyclefix.serverCommand") ||
        // The server may have been found through the interpreter setting.
        (event.affectsConfiguration("cyclefix.python") &&
          currentCommand?.source !== "cyclefix.serverCommand" &&
          currentCommand?.source !== "cyclefix on PATH") ||
        client === undefined ||
        client.state === State.Stopped
      ) {
        await restart(context);
        return;
      }
      const now = currentServerSettings();
      if (settingRemovedSinceStart(settingsAtStart, now)) {
        output.info("a setting sent at start was unset: restarting the server");
        await restart(context);
        return;
      }
      if (client.state !== State.Running) {
        await restart(context); // still starting: start again with the new settings
        return;
      }
      try {
        await client.sendNotification("workspace/didChangeConfiguration", {
          settings: { cyclefix: now },
        });
      } catch (error) {
        output.warn(`could not send the settings: ${error}`);
      }
    }),
  );
  await startClient(context);
}

export async function deactivate(): Promise<void> {
  await stopClient();
}
