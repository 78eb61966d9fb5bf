// src/extension.ts with the real vscode-languageclient and the real `cyclefix serve`, in plain
// Node: the `vscode` module is the stand-in of ./vscode-mock (not VS Code itself). Covers
// activation, the start errors, palette commands through the middleware, progress, and
// "Show fix as diff" becoming a vscode.diff call with the fixed text.
// The server part is skipped when no Python with cyclefix is found (as in server.test.ts).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";

import { SERVER_COMMANDS } from "../logic";
import { CancellationTokenSource, createMock, document } from "./vscode-mock";

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..", "..");
const FIXTURES = path.join(REPO_ROOT, "tests", "fixtures", "server");

const settings: Record<string, unknown> = {};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cyclefix-vscode-ext-"));
const mock = createMock(settings, tmp);

// Every `require("vscode")` (the extension's and languageclient's) gets the stand-in.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Module = require("node:module");
const originalLoad = Module._load;
Module._load = function (request: string, ...rest: unknown[]) {
  return request === "vscode" ? mock.vscode : originalLoad.call(this, request, ...rest);
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const extension: typeof import("../extension") = require("../extension");

function cyclefixScript(): string | undefined {
  const python = process.env.CYCLEFIX_TEST_PYTHON ?? path.join(REPO_ROOT, ".venv", "bin", "python");
  const script = path.join(path.dirname(python), "cyclefix");
  if (!fs.existsSync(python) || !fs.existsSync(script)) {
    return undefined;
  }
  const probe = spawnSync(python, ["-c", "import cyclefix.server.handlers"], { encoding: "utf8" });
  return probe.status === 0 ? script : undefined;
}

async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}; log:\n${mock.recorded.log.slice(-40).join("\n")}\nerrors: ${JSON.stringify(mock.recorded.errors)}\nexecuted: ${JSON.stringify(mock.recorded.executed).slice(0, 2000)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function withExtension(body: () => Promise<void>): Promise<void> {
  const context = { subscriptions: [] as Array<{ dispose(): unknown }> };
  try {
    await extension.activate(context as any);
    await body();
  } finally {
    await extension.deactivate();
    for (const item of context.subscriptions) {
      item.dispose();
    }
  }
}

function reset(values: Record<string, unknown>): void {
  for (const key of Object.keys(settings)) delete settings[key];
  Object.assign(settings, values);
  const r = mock.recorded;
  r.errors.length = 0;
  r.infos.length = 0;
  r.executed.length = 0;
  r.progress.length = 0;
  r.log.length = 0;
  r.diagnostics.clear();
}

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("extension (languageclient + stand-in vscode)", () => {
  test("a missing server command gives one clear error", async () => {
    reset({ "cyclefix.serverCommand": ["/nonexistent/bin/cyclefix"] });
    await withExtension(async () => {
      await waitFor("an error", () => mock.recorded.errors.length > 0, 10_000);
      assert.equal(mock.recorded.errors.length, 1, mock.recorded.errors.join("\n"));
      assert.match(
        mock.recorded.errors[0],
        /^cyclefix: the language server could not start \(`\/nonexistent\/bin\/cyclefix serve --stdio`, from cyclefix.serverCommand\)/,
      );
      assert.match(mock.recorded.errors[0], /set cyclefix.serverCommand/);
      assert.match(mock.recorded.status.text, /error/);
    });
  });

  test("a server that exits at once is not restarted in a loop", async () => {
    reset({ "cyclefix.serverCommand": [process.execPath, "-e", "process.exit(3)"] });
    await withExtension(async () => {
      await waitFor("an error", () => mock.recorded.errors.length > 0, 15_000);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(mock.recorded.errors.length, 1, mock.recorded.errors.join("\n"));
      assert.match(mock.recorded.errors[0], /could not start .*-e 'process.exit\(3\)' serve --stdio/);
    });
  });

  const script = cyclefixScript();
  test(
    "with cyclefix serve: save, diagnostics, progress, palette commands, diff view",
    { skip: script === undefined ? "no Python with cyclefix (set CYCLEFIX_TEST_PYTHON)" : false, timeout: 240_000 },
    async () => {
      const project = path.join(tmp, "stats");
      fs.cpSync(path.join(FIXTURES, "stats"), project, { recursive: true });
      const source = path.join(project, "stats.py");
      reset({
        "cyclefix.serverCommand": [script!, "serve", "--log-file", path.join(tmp, "server.log")],
        "cyclefix.model": `scripted:${path.join(FIXTURES, "replies", "median_fix.json")}`,
        "cyclefix.debounce": 0,
      });
      await withExtension(async () => {
        const r = mock.recorded;
        assert.deepEqual(r.errors, []);
        assert.equal(r.contexts.get("cyclefix.serverRunning"), true);
        for (const command of [...SERVER_COMMANDS, "cyclefix.restartServer", "cyclefix.showOutput"]) {
          assert.ok(r.commands.has(command), `${command} registered`);
        }
        assert.match(r.status.text, /cyclefix/);

        const doc = document(source);
        mock.open(doc);
        mock.save(doc);
        const uri = doc.uri.toString();
        await waitFor(
          "a verified fix diagnostic",
          () => r.diagnostics.get(uri)?.some((d) => d.message.startsWith("verified fix available")),
          180_000,
        );
        assert.ok(r.progress.length > 0, "languageclient showed progress");
        assert.deepEqual(r.errors, []);
        assert.deepEqual(r.warnings, [], "no warning about the settings sent");

        // The lightbulb: the server's code actions through languageclient's provider.
        const notice = r.diagnostics.get(uri)!.find((d) => d.message.startsWith("verified fix available"))!;
        const actions: any[] = await r.codeActionProviders[0].provideCodeActions(
          doc,
          notice.range,
          { diagnostics: [notice], only: undefined, triggerKind: 1 },
          new CancellationTokenSource().token,
        );
        assert.deepEqual(
          actions.map((a) => a.title),
          ["Apply verified fix", "Show fix as diff", "Refine again"],
        );
        const showAction = actions.find((a) => a.title === "Show fix as diff");
        assert.equal(showAction.command.command, "cyclefix.showDiff");
        await mock.vscode.commands.executeCommand(showAction.command.command, ...showAction.command.arguments);
        await waitFor("vscode.diff from the quick fix", () => r.executed.find((call) => call.command === "vscode.diff"), 10_000);
        assert.deepEqual(r.infos, [], "a quick fix says nothing more");
        r.executed.length = 0;

        // The palette: no arguments; the middleware sends the active file.
        await mock.vscode.commands.executeCommand("cyclefix.showDiff");
        const diffCall = await waitFor(
          "vscode.diff",
          () => r.executed.find((call) => call.command === "vscode.diff"),
          10_000,
        );
        const [left, right, title] = diffCall.args as [any, any, string];
        assert.equal(left.fsPath, source);
        assert.equal(right.scheme, "cyclefix-fix");
        assert.match(title, /^stats\.py: current ↔ verified fix \(fix-\d+\)$/);
        const fixed = r.contentProviders.get("cyclefix-fix")!.provideTextDocumentContent(right);
        assert.match(fixed, /ordered = sorted\(values\)/);
        assert.equal(fixed.split("\n").length, doc.getText().split("\n").length + 1);

        // "Apply verified fix" from the palette: the server's workspace/applyEdit on this file
        // gives the same text as the diff view.
        await mock.vscode.commands.executeCommand("cyclefix.applyFix");
        const edit = await waitFor("workspace/applyEdit", () => r.appliedEdits[0], 10_000);
        const edits = edit.edits.get(uri);
        assert.ok(edits && edits.length > 0, "edits for the file");
        const lines = doc.getText().split("\n");
        const offset = (p: { line: number; character: number }) =>
          lines.slice(0, p.line).reduce((sum, line) => sum + line.length + 1, 0) + p.character;
        let applied = doc.getText();
        for (const e of [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start))) {
          applied = applied.slice(0, offset(e.range.start)) + e.newText + applied.slice(offset(e.range.end));
        }
        assert.equal(applied, fixed);

        await mock.vscode.commands.executeCommand("cyclefix.runTests");
        await waitFor("the run's summary", () => r.infos.find((m) => /passed/.test(m)), 60_000);
        assert.match(r.infos.find((m) => /passed/.test(m))!, /^cyclefix: \d+ passed, [1-9]\d* failed$/);

        // A setting change is sent without a restart; unsetting one sent at start restarts.
        const restartsBefore = r.log.filter((line) => line.includes("restarting the server")).length;
        mock.changeConfiguration({ "cyclefix.rounds": 2 });
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(r.log.filter((line) => line.includes("restarting the server")).length, restartsBefore);
        mock.changeConfiguration({ "cyclefix.debounce": undefined });
        await waitFor(
          "a restart",
          () => r.log.some((line) => line.includes("a setting sent at start was unset")),
          10_000,
        );
        await waitFor("the server running again", () => r.contexts.get("cyclefix.serverRunning") === true, 30_000);
        assert.deepEqual(r.errors, []);
      });
      const log = fs.readFileSync(path.join(tmp, "server.log"), "utf8");
      assert.match(log, /settings from workspace settings: \{[^\n]*'rounds': 2/);
    },
  );
});
