// A small stand-in for the `vscode` module: enough of the API for vscode-languageclient and
// src/extension.ts to run in plain Node, with what they do recorded for the tests. It is not
// VS Code: rendering, the real diff editor and the real extension host are not exercised.

import * as fs from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

type Listener<T> = (event: T) => unknown;

export class Disposable {
  static from(...items: Array<{ dispose(): unknown }>): Disposable {
    return new Disposable(() => items.forEach((item) => item?.dispose?.()));
  }
  constructor(private readonly callback: () => unknown = () => undefined) {}
  dispose(): void {
    this.callback();
  }
}

export class EventEmitter<T> {
  private listeners: Array<Listener<T>> = [];
  event = (listener: Listener<T>, thisArg?: unknown, disposables?: Disposable[]): Disposable => {
    const bound = thisArg ? listener.bind(thisArg) : listener;
    this.listeners.push(bound);
    const disposable = new Disposable(() => {
      this.listeners = this.listeners.filter((l) => l !== bound);
    });
    disposables?.push(disposable);
    return disposable;
  };
  fire(event: T): void {
    for (const listener of [...this.listeners]) {
      listener(event);
    }
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly authority: string,
    readonly path: string,
    readonly query: string,
    readonly fragment: string,
  ) {}
  static parse(value: string): Uri {
    const url = new URL(value);
    return new Uri(
      url.protocol.replace(/:$/, ""),
      url.host,
      decodeURIComponent(url.pathname),
      url.search.replace(/^\?/, ""),
      url.hash.replace(/^#/, ""),
    );
  }
  static file(path: string): Uri {
    return Uri.parse(pathToFileURL(path).toString());
  }
  static from(parts: { scheme: string; authority?: string; path?: string; query?: string; fragment?: string }): Uri {
    return new Uri(parts.scheme, parts.authority ?? "", parts.path ?? "", parts.query ?? "", parts.fragment ?? "");
  }
  get fsPath(): string {
    return this.scheme === "file" ? fileURLToPath(this.toString()) : this.path;
  }
  with(change: Partial<{ scheme: string; path: string; query: string; fragment: string }>): Uri {
    return new Uri(
      change.scheme ?? this.scheme,
      this.authority,
      change.path ?? this.path,
      change.query ?? this.query,
      change.fragment ?? this.fragment,
    );
  }
  toString(): string {
    if (this.scheme === "file") {
      return pathToFileURL(this.path).toString();
    }
    const query = this.query ? `?${this.query}` : "";
    const fragment = this.fragment ? `#${this.fragment}` : "";
    return `${this.scheme}://${this.authority}${encodeURI(this.path)}${query}${fragment}`;
  }
  toJSON(): unknown {
    return { scheme: this.scheme, path: this.path, query: this.query };
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: Position | number, b: Position | number, c?: number, d?: number) {
    if (typeof a === "number") {
      this.start = new Position(a, b as number);
      this.end = new Position(c as number, d as number);
    } else {
      this.start = a;
      this.end = b as Position;
    }
  }
}

export class Diagnostic {
  code?: unknown;
  source?: string;
  relatedInformation?: unknown[];
  tags?: unknown[];
  data?: unknown;
  constructor(
    readonly range: Range,
    readonly message: string,
    readonly severity = 0,
  ) {}
}

export class CodeActionKind {
  static readonly Empty = new CodeActionKind("");
  static readonly QuickFix = new CodeActionKind("quickfix");
  static readonly Refactor = new CodeActionKind("refactor");
  static readonly Source = new CodeActionKind("source");
  constructor(readonly value: string) {}
  append(part: string): CodeActionKind {
    return new CodeActionKind(this.value ? `${this.value}.${part}` : part);
  }
  contains(other: CodeActionKind): boolean {
    return this.value === "" || other.value === this.value || other.value.startsWith(`${this.value}.`);
  }
  intersects(other: CodeActionKind): boolean {
    return this.contains(other) || other.contains(this);
  }
}

export class CodeAction {
  command?: { title: string; command: string; arguments?: unknown[] };
  diagnostics?: unknown[];
  isPreferred?: boolean;
  edit?: unknown;
  constructor(
    readonly title: string,
    readonly kind?: CodeActionKind,
  ) {}
}

export class TextEdit {
  constructor(
    readonly range: Range,
    readonly newText: string,
  ) {}
}

export class WorkspaceEdit {
  readonly edits = new Map<string, TextEdit[]>();
  set(uri: Uri, edits: Array<TextEdit | [TextEdit, unknown]>): void {
    this.edits.set(uri.toString(), edits.map((e) => (Array.isArray(e) ? e[0] : e)));
  }
  replace(uri: Uri, range: Range, newText: string): void {
    const list = this.edits.get(uri.toString()) ?? [];
    list.push(new TextEdit(range, newText));
    this.edits.set(uri.toString(), list);
  }
}

export class CancellationError extends Error {}

/** `object` with `anything` for every name it does not define. */
function withFallback<T extends object>(object: T, name: string): T {
  return new Proxy(object, {
    get(target: any, prop) {
      if (typeof prop === "string" && !(prop in target)) {
        target[prop] = anything(`${name}.${prop}`);
      }
      return target[prop];
    },
  });
}

export class CancellationTokenSource {
  private readonly emitter = new EventEmitter<void>();
  token = { isCancellationRequested: false, onCancellationRequested: this.emitter.event };
  cancel(): void {
    this.token.isCancellationRequested = true;
    this.emitter.fire();
  }
  dispose(): void {
    this.emitter.dispose();
  }
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

/** Any name not defined here: a value that can be called, constructed and read from. */
function anything(name: string): any {
  const target = function () {
    return undefined;
  };
  return new Proxy(target, {
    get(_t, prop) {
      if (prop === "then" || typeof prop === "symbol") {
        return undefined;
      }
      if (prop === "toString") {
        return () => name;
      }
      return anything(`${name}.${String(prop)}`);
    },
    construct(_t, args) {
      return { __class: name, args };
    },
    apply() {
      return new Disposable();
    },
  });
}

export interface Recorded {
  commands: Map<string, (...args: any[]) => unknown>;
  executed: Array<{ command: string; args: unknown[] }>;
  errors: string[];
  infos: string[];
  warnings: string[];
  log: string[];
  diagnostics: Map<string, Diagnostic[]>;
  contexts: Map<string, unknown>;
  progress: string[];
  status: { text: string; tooltip: unknown };
  contentProviders: Map<string, { provideTextDocumentContent(uri: Uri): string }>;
  codeActionProviders: any[];
  appliedEdits: WorkspaceEdit[];
}

export interface MockDocument {
  uri: Uri;
  fileName: string;
  languageId: string;
  version: number;
  isClosed: boolean;
  isDirty: boolean;
  isUntitled: boolean;
  lineCount: number;
  eol: number;
  getText(): string;
}

export function document(path: string, languageId = "python"): MockDocument {
  const text = fs.readFileSync(path, "utf8");
  return {
    uri: Uri.file(path),
    fileName: path,
    languageId,
    version: 1,
    isClosed: false,
    isDirty: false,
    isUntitled: false,
    lineCount: text.split("\n").length,
    eol: 1,
    getText: () => text,
  };
}

export function createMock(settings: Record<string, unknown>, folder: string) {
  const recorded: Recorded = {
    commands: new Map(),
    executed: [],
    errors: [],
    infos: [],
    warnings: [],
    log: [],
    diagnostics: new Map(),
    contexts: new Map(),
    progress: [],
    status: { text: "", tooltip: undefined },
    contentProviders: new Map(),
    codeActionProviders: [],
    appliedEdits: [],
  };
  const events = {
    open: new EventEmitter<MockDocument>(),
    close: new EventEmitter<MockDocument>(),
    change: new EventEmitter<unknown>(),
    save: new EventEmitter<MockDocument>(),
    willSave: new EventEmitter<unknown>(),
    configuration: new EventEmitter<{ affectsConfiguration(section: string): boolean }>(),
    activeEditor: new EventEmitter<unknown>(),
  };
  const textDocuments: MockDocument[] = [];
  let activeTextEditor: { document: MockDocument } | undefined;

  const configuration = (section?: string) => {
    const prefix = section ? `${section}.` : "";
    const lookup = (key: string) => settings[`${prefix}${key}`];
    return {
      get: (key: string, fallback?: unknown) => (lookup(key) === undefined ? fallback : lookup(key)),
      has: (key: string) => lookup(key) !== undefined,
      inspect: (key: string) => ({ key: `${prefix}${key}`, globalValue: lookup(key) }),
      update: async () => undefined,
    };
  };

  const channel = (name: string) => {
    const write = (level: string) => (message: unknown, ...rest: unknown[]) => {
      recorded.log.push(`[${name}:${level}] ${String(message)} ${rest.map(String).join(" ")}`.trim());
    };
    return {
      name,
      logLevel: 2,
      onDidChangeLogLevel: new EventEmitter<number>().event,
      append: write("append"),
      appendLine: write("line"),
      replace: write("replace"),
      trace: write("trace"),
      debug: write("debug"),
      info: write("info"),
      warn: write("warn"),
      error: write("error"),
      clear: () => undefined,
      show: () => undefined,
      hide: () => undefined,
      dispose: () => undefined,
    };
  };

  const message = (list: string[]) => async (text: string) => {
    list.push(text);
    return undefined;
  };

  const defined: Record<string, unknown> = {
    __esModule: true,
    version: "1.91.0",
    Disposable,
    EventEmitter,
    Uri,
    Position,
    Range,
    Diagnostic,
    CodeActionKind,
    CodeAction,
    TextEdit,
    WorkspaceEdit,
    CancellationError,
    CancellationTokenSource,
    ThemeColor,
    DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2, Hint: 3 },
    DiagnosticTag: { Unnecessary: 1, Deprecated: 2 },
    ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
    LogLevel: { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 },
    StatusBarAlignment: { Left: 1, Right: 2 },
    TextDocumentSaveReason: { Manual: 1, AfterDelay: 2, FocusOut: 3 },
    CodeActionTriggerKind: { Invoke: 1, Automatic: 2 },
    env: { appName: "mock", language: "en", openExternal: async () => true },
    extensions: { getExtension: () => undefined },
    commands: {
      registerCommand: (id: string, callback: (...args: any[]) => unknown) => {
        if (recorded.commands.has(id)) {
          throw new Error(`command '${id}' already exists`);
        }
        recorded.commands.set(id, callback);
        return new Disposable(() => recorded.commands.delete(id));
      },
      executeCommand: async (id: string, ...args: unknown[]) => {
        recorded.executed.push({ command: id, args });
        if (id === "setContext") {
          recorded.contexts.set(args[0] as string, args[1]);
          return undefined;
        }
        const callback = recorded.commands.get(id);
        return callback ? callback(...args) : undefined;
      },
    },
    languages: withFallback({
      registerCodeActionsProvider: (_selector: unknown, provider: unknown) => {
        recorded.codeActionProviders.push(provider);
        return new Disposable(() => {
          recorded.codeActionProviders = recorded.codeActionProviders.filter((p) => p !== provider);
        });
      },
      match: (selector: any, doc: MockDocument) => {
        const filters = Array.isArray(selector) ? selector : [selector];
        return filters.some(
          (f: any) =>
            (typeof f === "string" ? f === doc.languageId : (!f.language || f.language === doc.languageId) &&
              (!f.scheme || f.scheme === doc.uri.scheme)),
        )
          ? 10
          : 0;
      },
      createDiagnosticCollection: () => ({
        set: (uri: Uri, list: Diagnostic[] | undefined) => {
          recorded.diagnostics.set(uri.toString(), list ?? []);
        },
        delete: (uri: Uri) => recorded.diagnostics.delete(uri.toString()),
        clear: () => recorded.diagnostics.clear(),
        get: (uri: Uri) => recorded.diagnostics.get(uri.toString()),
        has: (uri: Uri) => recorded.diagnostics.has(uri.toString()),
        forEach: () => undefined,
        dispose: () => undefined,
      }),
    }, "languages"),
    workspace: withFallback({
      get workspaceFolders() {
        return [{ uri: Uri.file(folder), name: "folder", index: 0 }];
      },
      get textDocuments() {
        return textDocuments;
      },
      notebookDocuments: [],
      getConfiguration: configuration,
      getWorkspaceFolder: () => ({ uri: Uri.file(folder), name: "folder", index: 0 }),
      onDidOpenTextDocument: events.open.event,
      onDidCloseTextDocument: events.close.event,
      onDidChangeTextDocument: events.change.event,
      onDidSaveTextDocument: events.save.event,
      onWillSaveTextDocument: events.willSave.event,
      onDidChangeConfiguration: events.configuration.event,
      onDidChangeWorkspaceFolders: new EventEmitter<unknown>().event,
      onDidOpenNotebookDocument: new EventEmitter<unknown>().event,
      onDidCloseNotebookDocument: new EventEmitter<unknown>().event,
      onDidChangeNotebookDocument: new EventEmitter<unknown>().event,
      onDidSaveNotebookDocument: new EventEmitter<unknown>().event,
      createFileSystemWatcher: () => ({
        onDidCreate: new EventEmitter<unknown>().event,
        onDidChange: new EventEmitter<unknown>().event,
        onDidDelete: new EventEmitter<unknown>().event,
        dispose: () => undefined,
      }),
      openTextDocument: async (uri: Uri) => {
        const open = textDocuments.find((d) => d.uri.toString() === uri.toString());
        return open ?? document(uri.fsPath);
      },
      registerTextDocumentContentProvider: (scheme: string, provider: any) => {
        recorded.contentProviders.set(scheme, provider);
        return new Disposable(() => recorded.contentProviders.delete(scheme));
      },
      applyEdit: async (edit: WorkspaceEdit) => {
        recorded.appliedEdits.push(edit);
        return true;
      },
    }, "workspace"),
    window: withFallback({
      get activeTextEditor() {
        return activeTextEditor;
      },
      visibleTextEditors: [],
      tabGroups: { all: [], onDidChangeTabs: new EventEmitter<unknown>().event, onDidChangeTabGroups: new EventEmitter<unknown>().event },
      onDidChangeActiveTextEditor: events.activeEditor.event,
      onDidChangeVisibleTextEditors: new EventEmitter<unknown>().event,
      createOutputChannel: (name: string) => channel(name),
      createStatusBarItem: () => {
        const item: any = {
          show: () => undefined,
          hide: () => undefined,
          dispose: () => undefined,
        };
        return new Proxy(item, {
          set(target, prop, value) {
            target[prop] = value;
            if (prop === "text") recorded.status.text = value;
            if (prop === "tooltip") recorded.status.tooltip = value;
            return true;
          },
        });
      },
      showErrorMessage: message(recorded.errors),
      showInformationMessage: message(recorded.infos),
      showWarningMessage: message(recorded.warnings),
      showTextDocument: async () => undefined,
      withProgress: async (options: { title?: string }, task: (progress: any, token: any) => unknown) => {
        recorded.progress.push(`begin ${options.title ?? ""}`);
        return task(
          { report: (value: { message?: string }) => recorded.progress.push(`report ${value.message ?? ""}`) },
          new CancellationTokenSource().token,
        );
      },
    }, "window"),
  };
  const vscode: any = withFallback(defined, "vscode");

  return {
    vscode,
    recorded,
    open(doc: MockDocument) {
      textDocuments.push(doc);
      activeTextEditor = { document: doc };
      events.open.fire(doc);
      events.activeEditor.fire(activeTextEditor);
    },
    save(doc: MockDocument) {
      events.save.fire(doc);
    },
    changeConfiguration(changed: Record<string, unknown>) {
      Object.assign(settings, changed);
      for (const [key, value] of Object.entries(changed)) {
        if (value === undefined) delete settings[key];
      }
      events.configuration.fire({
        affectsConfiguration: (section: string) =>
          Object.keys(changed).some((key) => key === section || key.startsWith(`${section}.`)),
      });
    },
  };
}
