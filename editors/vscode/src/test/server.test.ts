// The extension's logic against the real `cyclefix serve --stdio`, without VS Code: the command
// it resolves, the settings it sends, the commands it forwards and the diff view's patching,
// with the scripted model of the server's own end-to-end tests (no model download).
// Skipped when no Python with cyclefix is found (CYCLEFIX_TEST_PYTHON, else the repo's .venv).

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL, fileURLToPath } from "node:url";
import { test } from "node:test";
import {
  StreamMessageReader,
  StreamMessageWriter,
  createProtocolConnection,
} from "vscode-languageserver-protocol/node";

import {
  SERVER_COMMANDS,
  applyPatch,
  commandArguments,
  findProjectRoot,
  parseDiffFileName,
  parseUnifiedDiff,
  progressText,
  resolveServerCommand,
  serverSettings,
  summarizeResult,
} from "../logic";

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..", "..");
const FIXTURES = path.join(REPO_ROOT, "tests", "fixtures", "server");

function testPython(): string | undefined {
  const python = process.env.CYCLEFIX_TEST_PYTHON ?? path.join(REPO_ROOT, ".venv", "bin", "python");
  if (!fs.existsSync(python)) {
    return undefined;
  }
  const probe = spawnSync(python, ["-c", "import cyclefix.server.handlers"], { encoding: "utf8" });
  return probe.status === 0 ? python : undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

interface Position {
  line: number;
  character: number;
}
interface TextEdit {
  range: { start: Position; end: Position };
  newText: string;
}

function offsetOf(text: string, position: Position): number {
  let offset = 0;
  for (let line = 0; line < position.line; line += 1) {
    const next = text.indexOf("\n", offset);
    offset = next === -1 ? text.length : next + 1;
  }
  return offset + position.character;
}

function applyEdits(text: string, edits: TextEdit[]): string {
  const sorted = [...edits].sort(
    (a, b) => offsetOf(text, b.range.start) - offsetOf(text, a.range.start),
  );
  let result = text;
  for (const edit of sorted) {
    result =
      result.slice(0, offsetOf(text, edit.range.start)) +
      edit.newText +
      result.slice(offsetOf(text, edit.range.end));
  }
  return result;
}

async function waitFor<T>(what: string, check: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const python = testPython();

test(
  "against cyclefix serve: settings, commands, progress and the diff view's patch",
  { skip: python === undefined ? "no Python with cyclefix (set CYCLEFIX_TEST_PYTHON)" : false, timeout: 240_000 },
  async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cyclefix-vscode-"));
    const project = path.join(tmp, "stats");
    fs.cpSync(path.join(FIXTURES, "stats"), project, { recursive: true });
    const source = path.join(project, "stats.py");
    const sourceUri = pathToFileURL(source).toString();
    const original = fs.readFileSync(source, "utf8");

    // The command the extension would start with cyclefix.python set and nothing on PATH.
    const resolved = resolveServerCommand({ python, pathEnv: "", isExecutable });
    assert.ok(!("error" in resolved), JSON.stringify(resolved));
    assert.equal(resolved.source, "cyclefix beside cyclefix.python");
    const child = spawn(resolved.command, [...resolved.args, "--log-file", path.join(tmp, "server.log")], {
      cwd: project,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stderr = "";
    let failed = false;
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const connection = createProtocolConnection(
      new StreamMessageReader(child.stdout),
      new StreamMessageWriter(child.stdin),
    );
    const diagnostics = new Map<string, Array<{ message: string; data?: unknown; code?: unknown }>>();
    const messages: Array<{ type: number; message: string }> = [];
    const progress: string[] = [];
    const shown: string[] = [];
    const settings = serverSettings((key) =>
      ({
        model: { globalValue: `scripted:${path.join(FIXTURES, "replies", "median_fix.json")}` },
        debounce: { globalValue: 0 },
        rounds: { defaultValue: 4, workspaceValue: 2 },
        autoRefine: { defaultValue: true },
        python: { defaultValue: null },
        threads: { globalValue: 2 },
        gitOnApply: { defaultValue: "none", globalValue: "none" },
        gpuLayers: { defaultValue: null },
      })[key as string],
    );
    assert.deepEqual(Object.keys(settings).sort(), ["debounce", "gitOnApply", "model", "rounds", "threads"]);
    connection.onNotification("textDocument/publishDiagnostics", (params) => {
      diagnostics.set(params.uri, params.diagnostics);
    });
    connection.onNotification("window/showMessage", (params) => {
      messages.push(params);
    });
    connection.onNotification("window/logMessage", () => undefined);
    connection.onNotification("$/progress", (params) => {
      const text = progressText(params.value, undefined);
      if (text !== undefined) {
        progress.push(text);
      }
    });
    connection.onRequest("window/workDoneProgress/create", () => null);
    connection.onRequest("client/registerCapability", () => null);
    connection.onRequest("workspace/configuration", () => [settings]);
    connection.onRequest("window/showDocument", (params) => {
      shown.push(params.uri);
      return { success: true };
    });
    connection.onRequest("workspace/applyEdit", () => ({ applied: true }));
    connection.listen();
    try {
      const init = await connection.sendRequest("initialize", {
        processId: process.pid,
        rootUri: pathToFileURL(project).toString(),
        workspaceFolders: [{ uri: pathToFileURL(project).toString(), name: "stats" }],
        initializationOptions: settings,
        capabilities: {
          window: { workDoneProgress: true, showDocument: { support: true } },
          workspace: {
            configuration: true,
            applyEdit: true,
            workspaceEdit: { documentChanges: true },
          },
          textDocument: {
            synchronization: { didSave: true },
            codeAction: {
              resolveSupport: { properties: ["edit"] },
              codeActionLiteralSupport: { codeActionKind: { valueSet: ["quickfix"] } },
            },
          },
        },
      });
      const commands: string[] = (init as any).capabilities.executeCommandProvider.commands;
      for (const command of SERVER_COMMANDS) {
        assert.ok(commands.includes(command), `server announces ${command}`);
      }
      await connection.sendNotification("initialized", {});
      // What the extension sends when a setting changes.
      await connection.sendNotification("workspace/didChangeConfiguration", {
        settings: { cyclefix: settings },
      });
      await connection.sendNotification("textDocument/didOpen", {
        textDocument: { uri: sourceUri, languageId: "python", version: 1, text: original },
      });
      await connection.sendNotification("textDocument/didSave", { textDocument: { uri: sourceUri } });

      const fixNotice = await waitFor(
        "a verified fix",
        () => diagnostics.get(sourceUri)?.find((d) => d.message.startsWith("verified fix available")),
        Number(process.env.CYCLEFIX_TEST_FIX_TIMEOUT_MS ?? 180_000),
      );
      assert.deepEqual(
        messages.filter((m) => m.type <= 2),
        [],
        "no warning about the settings sent",
      );
      assert.ok(progress.length > 0, "progress was reported");

      // The palette's "Show fix as diff" with the active file.
      const showArgs = commandArguments("cyclefix.showDiff", [], sourceUri);
      const shownResult: any = await connection.sendRequest("workspace/executeCommand", {
        command: "cyclefix.showDiff",
        arguments: showArgs,
      });
      assert.equal(shownResult.shownAsDocument, true);
      assert.equal(shown.length, 1);
      const diffPath = fileURLToPath(shown[0]);
      const names = parseDiffFileName(diffPath);
      assert.ok(names, diffPath);
      assert.equal(names.rootName, "stats");
      assert.equal(names.fixId, (fixNotice.data as { fixId: string }).fixId);
      const patches = parseUnifiedDiff(fs.readFileSync(diffPath, "utf8"));
      assert.deepEqual(
        patches.map((p) => p.path),
        ["stats.py"],
      );
      const root = findProjectRoot(["stats.py"], names.rootName, [path.dirname(source)], fs.existsSync);
      assert.equal(root, fs.realpathSync(project));
      const fixedByDiff = applyPatch(original, patches[0]);
      assert.match(fixedByDiff, /ordered = sorted\(values\)/);

      // The diff view shows exactly what "Apply verified fix" would do.
      const actions: any[] = await connection.sendRequest("textDocument/codeAction", {
        textDocument: { uri: sourceUri },
        range: { start: { line: 8, character: 0 }, end: { line: 8, character: 0 } },
        context: { diagnostics: [fixNotice], only: ["quickfix"] },
      });
      assert.deepEqual(
        actions.map((a) => a.title),
        ["Apply verified fix", "Show fix as diff", "Refine again"],
      );
      assert.deepEqual(actions[1].command.arguments, [names.fixId]);
      // A code action's own arguments go through unchanged.
      assert.deepEqual(commandArguments("cyclefix.showDiff", actions[1].command.arguments, sourceUri), [names.fixId]);
      const resolvedAction: any = await connection.sendRequest("codeAction/resolve", actions[0]);
      const [documentEdit] = resolvedAction.edit.documentChanges;
      assert.equal(applyEdits(original, documentEdit.edits), fixedByDiff);

      // runTests and cancel from the palette, as the extension summarizes them.
      const run: any = await connection.sendRequest("workspace/executeCommand", {
        command: "cyclefix.runTests",
        arguments: commandArguments("cyclefix.runTests", [], sourceUri),
      });
      assert.match(summarizeResult("cyclefix.runTests", run) ?? "", /^cyclefix: \d+ passed, [1-9]\d* failed/);
      const cancelled: any = await connection.sendRequest("workspace/executeCommand", {
        command: "cyclefix.cancel",
        arguments: commandArguments("cyclefix.cancel", [], undefined),
      });
      assert.match(summarizeResult("cyclefix.cancel", cancelled) ?? "", /^cyclefix: (nothing to cancel|cancelled)/);

      await connection.sendRequest("shutdown");
      await connection.sendNotification("exit");
    } catch (error) {
      failed = true;
      const log = fs.existsSync(path.join(tmp, "server.log"))
        ? fs.readFileSync(path.join(tmp, "server.log"), "utf8").slice(-4000)
        : "";
      throw new Error(
        `${error}\n--- diagnostics ---\n${JSON.stringify([...diagnostics], null, 1).slice(0, 3000)}` +
          `\n--- messages ---\n${JSON.stringify(messages)}\n--- server stderr ---\n${stderr}` +
          `\n--- server.log (kept in ${tmp}) ---\n${log}`,
      );
    } finally {
      connection.dispose();
      child.kill();
      if (!failed) {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
  },
);
