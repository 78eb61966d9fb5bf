// The extension's own logic, kept free of the `vscode` module so plain `node --test` can test it:
// settings mapping, server command resolution, command arguments and result summaries,
// progress text, crash policy, and applying the server's unified diff for the diff view.

import * as path from "node:path";

// ----------------------------------------------------------------------------- settings

/**
 * The settings the server accepts (`LSP_NAMES` in cyclefix/config.py, which cyclefix/server/settings.py uses): the VS Code
 * setting `cyclefix.<key>` is sent as `<key>`.
 */
export const SERVER_SETTING_KEYS = [
  "model",
  "tests",
  "rounds",
  "budget",
  "autoRefine",
  "debounce",
  "perTestTimeout",
  "python",
  "gpuLayers",
  "threads",
  "gitOnApply",
  "passEnv",
] as const;
export type ServerSettingKey = (typeof SERVER_SETTING_KEYS)[number];

/** The settings of the extension itself, never sent to the server. */
export const CLIENT_SETTING_KEYS = ["serverCommand", "trace.server"] as const;

/** What `WorkspaceConfiguration.inspect(key)` returns, reduced to what is used here. */
export interface Inspected {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/** The value the user set explicitly (folder > workspace > user), or undefined. */
export function explicitValue(inspected: Inspected | undefined): unknown {
  if (inspected === undefined) {
    return undefined;
  }
  for (const value of [
    inspected.workspaceFolderValue,
    inspected.workspaceValue,
    inspected.globalValue,
  ]) {
    if (value !== undefined) {
      return value;
    }
  }
  return undefined;
}

/**
 * The settings to send to the server: only those the user set. A default of the extension is
 * never sent, so `[tool.cyclefix]` in the project's pyproject.toml (which the server reads and
 * which loses to anything the client sends) still applies to every key the user left alone.
 * A null value means "unset" to the server too, so it is left out.
 */
export function serverSettings(
  inspect: (key: ServerSettingKey) => Inspected | undefined,
): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const key of SERVER_SETTING_KEYS) {
    const value = explicitValue(inspect(key));
    if (value !== undefined && value !== null) {
      settings[key] = value;
    }
  }
  return settings;
}

/**
 * Whether the server has to restart to drop a setting. The server keeps
 * `initializationOptions` as a layer of its own below `workspace/didChangeConfiguration`,
 * so a key sent at start and unset since would keep its old value until a restart.
 */
export function settingRemovedSinceStart(
  sentAtStart: Record<string, unknown>,
  now: Record<string, unknown>,
): boolean {
  return Object.keys(sentAtStart).some((key) => !(key in now));
}

// ----------------------------------------------------------------------------- server command

export interface ServerCommand {
  command: string;
  args: string[];
  /** How it was found, for messages. */
  source: string;
}

export interface ResolveInput {
  /** `cyclefix.serverCommand`: an argument vector (a plain string is one program path). */
  serverCommand?: unknown;
  /** `cyclefix.python`, the interpreter for the tests. */
  python?: unknown;
  /** The interpreter selected in the Python extension, when it is installed. */
  selectedPython?: string;
  /** The PATH the extension host sees. */
  pathEnv?: string;
  platform?: NodeJS.Platform;
  /** Whether a file exists and is executable. */
  isExecutable: (file: string) => boolean;
}

export type Resolution = ServerCommand | { error: string; tried: string[] };

export const SERVE_ARGS = ["serve", "--stdio"];

/** `serve --stdio` added to a user's vector unless it already says `serve`. */
export function withServeArgs(argv: string[]): string[] {
  if (!argv.includes("serve")) {
    return [...argv, ...SERVE_ARGS];
  }
  if (!argv.includes("--stdio") && !argv.includes("--tcp")) {
    return [...argv, "--stdio"];
  }
  return [...argv];
}

function executableNames(name: string, platform: NodeJS.Platform): string[] {
  return platform === "win32" ? [`${name}.exe`, `${name}.cmd`, name] : [name];
}

/** The first `name` on `pathEnv`, like the shell's lookup. */
export function findOnPath(
  name: string,
  pathEnv: string | undefined,
  platform: NodeJS.Platform,
  isExecutable: (file: string) => boolean,
): string | undefined {
  const separator = platform === "win32" ? ";" : ":";
  const join = platform === "win32" ? path.win32.join : path.posix.join;
  for (const dir of (pathEnv ?? "").split(separator)) {
    if (!dir) {
      continue;
    }
    for (const candidate of executableNames(name, platform)) {
      const file = join(dir, candidate);
      if (isExecutable(file)) {
        return file;
      }
    }
  }
  return undefined;
}

/**
 * The command that starts the server. Order: `cyclefix.serverCommand` when set (nothing else is
 * tried then), `cyclefix` on PATH, the `cyclefix` script beside `cyclefix.python` or beside the
 * Python extension's interpreter, then `<that python> -m cyclefix.cli`.
 */
export function resolveServerCommand(input: ResolveInput): Resolution {
  const platform = input.platform ?? process.platform;
  const tried: string[] = [];
  const configured = input.serverCommand;
  let argv: string[] = [];
  if (typeof configured === "string") {
    argv = configured.trim() ? [configured.trim()] : [];
  } else if (Array.isArray(configured)) {
    argv = configured.filter((part): part is string => typeof part === "string");
    if (argv.length !== configured.length) {
      return {
        error: "cyclefix.serverCommand must be a list of strings",
        tried: [],
      };
    }
    argv = argv.length > 0 && argv[0].trim() === "" ? [] : argv;
  } else if (configured !== undefined && configured !== null) {
    return { error: "cyclefix.serverCommand must be a list of strings", tried: [] };
  }
  if (argv.length > 0) {
    const full = withServeArgs(argv);
    return { command: full[0], args: full.slice(1), source: "cyclefix.serverCommand" };
  }

  const onPath = findOnPath("cyclefix", input.pathEnv, platform, input.isExecutable);
  if (onPath !== undefined) {
    return { command: onPath, args: [...SERVE_ARGS], source: "cyclefix on PATH" };
  }
  tried.push("`cyclefix` on PATH");

  const pythons: Array<[string, string]> = [];
  if (typeof input.python === "string" && input.python.trim()) {
    pythons.push([input.python.trim(), "cyclefix.python"]);
  }
  if (input.selectedPython && !pythons.some(([p]) => p === input.selectedPython)) {
    pythons.push([input.selectedPython, "the Python extension's interpreter"]);
  }
  const dirname = platform === "win32" ? path.win32.dirname : path.posix.dirname;
  const join = platform === "win32" ? path.win32.join : path.posix.join;
  for (const [python, source] of pythons) {
    for (const name of executableNames("cyclefix", platform)) {
      const script = join(dirname(python), name);
      if (input.isExecutable(script)) {
        return { command: script, args: [...SERVE_ARGS], source: `cyclefix beside ${source}` };
      }
    }
    tried.push(`cyclefix beside ${python} (${source})`);
  }
  if (pythons.length > 0) {
    const [python, source] = pythons[0];
    // cyclefix has no __main__ module; cyclefix.cli runs main() when run as a script.
    return {
      command: python,
      args: ["-m", "cyclefix.cli", ...SERVE_ARGS],
      source: `${source} (python -m cyclefix.cli)`,
    };
  }
  return {
    error:
      "cyclefix was not found: it is not on PATH, and neither cyclefix.python nor a Python " +
      "extension interpreter is set",
    tried,
  };
}

/** The command line as a person would type it, for messages. */
export function describeCommand(command: ServerCommand): string {
  const quote = (part: string) => (/^[\w@%+=:,./-]+$/.test(part) ? part : `'${part.replace(/'/g, "'\\''")}'`);
  return [command.command, ...command.args].map(quote).join(" ");
}

/** The message shown when the server cannot start (or stops right after starting). */
export function startFailureMessage(
  command: ServerCommand | undefined,
  reason: string,
): string {
  const what = command ? ` (\`${describeCommand(command)}\`, from ${command.source})` : "";
  return (
    `cyclefix: the language server could not start${what}: ${reason}. ` +
    "Install cyclefix (`make install` in a checkout puts it in .venv/bin/cyclefix) and set " +
    "cyclefix.serverCommand to its path, or select a Python that has it installed."
  );
}

// ----------------------------------------------------------------------------- crashes

/**
 * Restart policy: a server that stops before it ever answered `initialize`, or that stops
 * `maxCrashes` times within `windowMs`, is not restarted (the user gets one clear error).
 */
export class CrashPolicy {
  private readonly crashes: number[] = [];

  constructor(
    private readonly maxCrashes = 3,
    private readonly windowMs = 3 * 60 * 1000,
  ) {}

  /** Record a stop at `now`; true when the server should be restarted. */
  shouldRestart(now: number, everInitialized: boolean): boolean {
    if (!everInitialized) {
      return false;
    }
    this.crashes.push(now);
    while (this.crashes.length > 0 && now - this.crashes[0] > this.windowMs) {
      this.crashes.shift();
    }
    return this.crashes.length < this.maxCrashes;
  }
}

// ----------------------------------------------------------------------------- commands

/** The commands the server answers (cyclefix/server/commands.py, `CMD_*`). */
export const SERVER_COMMANDS = [
  "cyclefix.runTests",
  "cyclefix.refine",
  "cyclefix.cancel",
  "cyclefix.applyFix",
  "cyclefix.showDiff",
] as const;
export type ServerCommandId = (typeof SERVER_COMMANDS)[number];

export function isServerCommand(command: string): command is ServerCommandId {
  return (SERVER_COMMANDS as readonly string[]).includes(command);
}

/**
 * The arguments to send for a command. Code actions call the commands with their own arguments
 * (a fix id or a file URI): those go through unchanged. From the command palette there are
 * none: the active file is the target (`cancel` without a file cancels every project's work;
 * `applyFix` / `showDiff` need the file to find the project's fix).
 */
export function commandArguments(
  command: string,
  args: unknown[],
  activeFileUri: string | undefined,
): unknown[] {
  if (args.length > 0 && args.some((arg) => arg !== undefined && arg !== null)) {
    return args;
  }
  if (activeFileUri === undefined) {
    return [];
  }
  switch (command) {
    case "cyclefix.applyFix":
    case "cyclefix.showDiff":
      return [{ uri: activeFileUri }];
    case "cyclefix.runTests":
    case "cyclefix.refine":
    case "cyclefix.cancel":
      return [activeFileUri];
    default:
      return [];
  }
}

/** Whether a call came from the palette (or a key binding): no arguments of its own. */
export function isInteractiveCall(args: unknown[]): boolean {
  return !args.some((arg) => arg !== undefined && arg !== null);
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

/** A one-line summary of a command's result, for a palette call; undefined: say nothing. */
export function summarizeResult(command: string, result: unknown): string | undefined {
  if (result === null || typeof result !== "object") {
    return undefined;
  }
  const r = result as Record<string, unknown>;
  switch (command) {
    case "cyclefix.runTests": {
      if (r.ran === false) {
        const syntax = typeof r.syntaxErrors === "number" ? r.syntaxErrors : 0;
        return syntax > 0
          ? `cyclefix: tests not run: ${plural(syntax, "syntax error")}`
          : "cyclefix: no tests were run";
      }
      const parts = [`${r.passed ?? 0} passed`, `${r.failed ?? 0} failed`];
      if (typeof r.collectionErrors === "number" && r.collectionErrors > 0) {
        parts.push(plural(r.collectionErrors, "collection error"));
      }
      return `cyclefix: ${parts.join(", ")}`;
    }
    case "cyclefix.refine": {
      const status = String(r.status ?? "");
      const words: Record<string, string> = {
        fixed: `verified fix ${r.fixId ?? ""} available: use the quick fix or "cyclefix: Apply verified fix"`,
        already_passing: "the tests already pass: nothing to refine",
        not_run: "nothing was refined (no failing test was run)",
      };
      return `cyclefix: ${words[status] ?? `no verified fix (${status.replace(/_/g, " ") || "unknown"})`}`;
    }
    case "cyclefix.cancel":
      return typeof r.cancelled === "number"
        ? r.cancelled > 0
          ? `cyclefix: cancelled ${plural(r.cancelled, "run")}`
          : "cyclefix: nothing to cancel"
        : undefined;
    case "cyclefix.applyFix":
      return r.applied === false
        ? `cyclefix: the fix was not applied${r.failureReason ? `: ${r.failureReason}` : ""}`
        : undefined;
    default:
      return undefined;
  }
}

// ----------------------------------------------------------------------------- progress

export interface ProgressValue {
  kind: "begin" | "report" | "end";
  title?: string;
  message?: string;
  percentage?: number;
}

/** The status bar text for a `$/progress` value; undefined when the work ended. */
export function progressText(
  value: ProgressValue,
  title: string | undefined,
): string | undefined {
  if (value.kind === "end") {
    return undefined;
  }
  const heading = value.title ?? title;
  const parts = [heading, value.message].filter((part): part is string => !!part);
  const text = parts.length > 0 ? parts.join(": ") : "working";
  return `$(sync~spin) cyclefix: ${text}`;
}

// ----------------------------------------------------------------------------- diff

/**
 * The server writes `<dir>/<fixId>-<project dir name>.diff`, `<dir>` being a fresh
 * `cyclefix-fixes-XXXXXXXX` (older servers: `cyclefix-fixes`) in the runtime or temp directory.
 */
export function parseDiffFileName(
  filePath: string,
): { fixId: string; rootName: string } | undefined {
  const base = filePath.split(/[\\/]/).pop() ?? "";
  const dir = filePath.split(/[\\/]/).slice(-2, -1)[0];
  const match = /^(fix-\d+)-(.+)\.diff$/.exec(base);
  if (dir === undefined || !/^cyclefix-fixes(-[^/\\]+)?$/.test(dir) || match === null) {
    return undefined;
  }
  return { fixId: match[1], rootName: match[2] };
}

export interface Hunk {
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  /** Each line with its prefix (' ', '-', '+') and its line ending. */
  lines: string[];
}

export interface FilePatch {
  /** Path relative to the project root (without a/ b/). */
  path: string;
  hunks: Hunk[];
}

function splitKeepEnds(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

function stripPrefix(name: string): string {
  const cleaned = name.replace(/\t.*$/, "").trim();
  return cleaned.replace(/^[ab]\//, "");
}

/** Parse a unified diff (as written by Python's difflib, one or more files). */
export function parseUnifiedDiff(text: string): FilePatch[] {
  const lines = splitKeepEnds(text);
  const patches: FilePatch[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.startsWith("--- ") && i + 1 < lines.length && lines[i + 1].startsWith("+++ ")) {
      const newName = stripPrefix(lines[i + 1].slice(4).replace(/\r?\n$/, ""));
      const oldName = stripPrefix(line.slice(4).replace(/\r?\n$/, ""));
      const patch: FilePatch = { path: newName === "/dev/null" ? oldName : newName, hunks: [] };
      patches.push(patch);
      i += 2;
      while (i < lines.length && lines[i].startsWith("@@")) {
        const header = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(lines[i]);
        if (header === null) {
          throw new Error(`bad hunk header: ${lines[i].trim()}`);
        }
        const hunk: Hunk = {
          oldStart: Number(header[1]),
          oldLines: header[2] === undefined ? 1 : Number(header[2]),
          newStart: Number(header[3]),
          newLines: header[4] === undefined ? 1 : Number(header[4]),
          lines: [],
        };
        i += 1;
        let oldSeen = 0;
        let newSeen = 0;
        while (i < lines.length && (oldSeen < hunk.oldLines || newSeen < hunk.newLines)) {
          const body = lines[i];
          const prefix = body[0];
          if (prefix === "\\") {
            // "\ No newline at end of file": the line before has no line ending.
            const last = hunk.lines.length - 1;
            if (last >= 0) {
              hunk.lines[last] = hunk.lines[last].replace(/\n$/, "");
            }
          } else if (prefix === " " || prefix === "-" || prefix === "+") {
            hunk.lines.push(body);
            if (prefix !== "+") oldSeen += 1;
            if (prefix !== "-") newSeen += 1;
          } else if (body === "\n") {
            // An empty context line whose leading space was stripped by an editor.
            hunk.lines.push(" \n");
            oldSeen += 1;
            newSeen += 1;
          } else {
            throw new Error(`bad line in hunk: ${body.trim()}`);
          }
          i += 1;
        }
        if (oldSeen !== hunk.oldLines || newSeen !== hunk.newLines) {
          throw new Error("the diff ends inside a hunk");
        }
        if (i < lines.length && lines[i].startsWith("\\")) {
          const last = hunk.lines.length - 1;
          hunk.lines[last] = hunk.lines[last].replace(/\n$/, "");
          i += 1;
        }
        patch.hunks.push(hunk);
      }
      continue;
    }
    i += 1;
  }
  return patches;
}

/**
 * `original` with the hunks applied. Throws when the text does not match the diff's context,
 * i.e. the file changed since the fix was computed.
 */
export function applyPatch(original: string, patch: FilePatch): string {
  const source = splitKeepEnds(original);
  const out: string[] = [];
  let next = 0; // index into source of the first line not yet copied
  for (const hunk of patch.hunks) {
    // For a pure insertion (oldLines 0) oldStart is the line after which the text goes.
    const start = hunk.oldLines === 0 ? hunk.oldStart : hunk.oldStart - 1;
    if (start < next || start > source.length) {
      throw new Error(`hunk at line ${hunk.oldStart} is out of order or past the end`);
    }
    out.push(...source.slice(next, start));
    let at = start;
    for (const line of hunk.lines) {
      const prefix = line[0];
      const content = line.slice(1);
      if (prefix === "+") {
        out.push(content);
        continue;
      }
      if (at >= source.length || source[at] !== content) {
        throw new Error(
          `${patch.path} line ${at + 1} does not match the diff: the file changed since the fix was computed`,
        );
      }
      if (prefix === " ") {
        out.push(content);
      }
      at += 1;
    }
    next = at;
  }
  out.push(...source.slice(next));
  return out.join("");
}

/**
 * The project directory a diff belongs to: the first candidate (or one of its parents) whose
 * name is `rootName` and that holds the diff's first file. Candidates: the open files' folders
 * and the workspace folders.
 */
export function findProjectRoot(
  relPaths: string[],
  rootName: string,
  candidates: string[],
  exists: (file: string) => boolean,
): string | undefined {
  const seen = new Set<string>();
  for (const candidate of candidates) {
    let dir = path.resolve(candidate);
    for (;;) {
      if (!seen.has(dir)) {
        seen.add(dir);
        if (path.basename(dir) === rootName && relPaths.every((rel) => exists(path.join(dir, rel)))) {
          return dir;
        }
      }
      const parent = path.dirname(dir);
      if (parent === dir) {
        break;
      }
      dir = parent;
    }
  }
  return undefined;
}
