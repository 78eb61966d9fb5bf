// Unit tests of the extension's logic; no VS Code needed (`npm test`).

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";

import {
  CrashPolicy,
  Inspected,
  SERVER_COMMANDS,
  SERVER_SETTING_KEYS,
  applyPatch,
  commandArguments,
  describeCommand,
  explicitValue,
  findOnPath,
  findProjectRoot,
  isInteractiveCall,
  parseDiffFileName,
  parseUnifiedDiff,
  progressText,
  resolveServerCommand,
  serverSettings,
  settingRemovedSinceStart,
  startFailureMessage,
  summarizeResult,
  withServeArgs,
} from "../logic";

const EXTENSION_ROOT = path.resolve(__dirname, "..", "..");
const REPO_ROOT = path.resolve(EXTENSION_ROOT, "..", "..");

describe("settings", () => {
  test("only the values the user set are sent, folder over workspace over user", () => {
    const inspected: Record<string, Inspected> = {
      model: { defaultValue: "qwen2.5-coder-1.5b", globalValue: "qwen2.5-coder-0.5b" },
      rounds: { defaultValue: 4, globalValue: 6, workspaceValue: 3 },
      budget: { defaultValue: 300 },
      autoRefine: { defaultValue: true, workspaceFolderValue: false, workspaceValue: true },
      debounce: { defaultValue: 0.3, globalValue: 0 },
      python: { defaultValue: null, globalValue: null },
      tests: { defaultValue: [], workspaceValue: ["tests/test_a.py"] },
    };
    assert.deepEqual(
      serverSettings((key) => inspected[key]),
      {
        model: "qwen2.5-coder-0.5b",
        tests: ["tests/test_a.py"],
        rounds: 3,
        autoRefine: false,
        debounce: 0,
      },
    );
  });

  test("nothing set sends nothing, so [tool.cyclefix] in pyproject.toml applies", () => {
    assert.deepEqual(serverSettings(() => ({ defaultValue: 1 })), {});
    assert.deepEqual(serverSettings(() => undefined), {});
    assert.equal(explicitValue(undefined), undefined);
  });

  test("false, 0 and an empty string are real values", () => {
    assert.equal(explicitValue({ globalValue: false }), false);
    assert.equal(explicitValue({ globalValue: 0 }), 0);
    assert.deepEqual(serverSettings((key) => (key === "python" ? { globalValue: "" } : undefined)), {
      python: "",
    });
  });

  test("a key sent at start and unset since needs a restart", () => {
    assert.equal(settingRemovedSinceStart({ rounds: 3 }, { rounds: 5 }), false);
    assert.equal(settingRemovedSinceStart({}, { rounds: 5 }), false);
    assert.equal(settingRemovedSinceStart({ rounds: 3, model: "m" }, { model: "m" }), true);
  });

  test("the keys match the server's settings (settings.py, or cyclefix/config.py it imports)", () => {
    const names = new Set<string>();
    for (const file of ["cyclefix/server/settings.py", "cyclefix/config.py"]) {
      const full = path.join(REPO_ROOT, file);
      if (!fs.existsSync(full)) {
        continue;
      }
      const block = /^_?LSP_NAMES = \{([^}]*)\}/m.exec(fs.readFileSync(full, "utf8"));
      for (const match of block ? block[1].matchAll(/:\s*"(\w+)"/g) : []) {
        names.add(match[1]);
      }
    }
    assert.ok(names.size > 0, "LSP_NAMES found in the server's sources");
    assert.deepEqual([...names].sort(), [...SERVER_SETTING_KEYS].sort());
  });

  test("package.json contributes every server setting and command", () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(EXTENSION_ROOT, "package.json"), "utf8"));
    const properties = Object.keys(manifest.contributes.configuration.properties);
    for (const key of SERVER_SETTING_KEYS) {
      assert.ok(properties.includes(`cyclefix.${key}`), `cyclefix.${key}`);
    }
    assert.ok(properties.includes("cyclefix.serverCommand"));
    const commands = manifest.contributes.commands.map((c: { command: string }) => c.command);
    for (const command of SERVER_COMMANDS) {
      assert.ok(commands.includes(command), command);
    }
    // The extension's defaults are the server's (cyclefix/server/settings.py, RefineConfig).
    const defaults = Object.fromEntries(
      Object.entries(manifest.contributes.configuration.properties).map(([k, v]) => [
        k,
        (v as { default: unknown }).default,
      ]),
    );
    assert.equal(defaults["cyclefix.model"], "qwen2.5-coder-1.5b");
    assert.equal(defaults["cyclefix.autoRefine"], true);
    assert.equal(defaults["cyclefix.debounce"], 0.3);
    assert.equal(defaults["cyclefix.python"], null);
  });

  test("the commands match the server's CMD_* names", () => {
    const source = fs.readFileSync(path.join(REPO_ROOT, "cyclefix/server/commands.py"), "utf8");
    const names = [...source.matchAll(/^CMD_\w+ = "([\w.]+)"/gm)].map((m) => m[1]);
    assert.deepEqual([...names].sort(), [...SERVER_COMMANDS].sort());
  });
});

describe("server command", () => {
  const executables = (files: string[]) => (file: string) => files.includes(file);

  test("cyclefix.serverCommand wins and gets serve --stdio", () => {
    const resolved = resolveServerCommand({
      serverCommand: ["/opt/cf/bin/cyclefix"],
      pathEnv: "/usr/bin",
      isExecutable: executables(["/usr/bin/cyclefix"]),
    });
    assert.deepEqual(resolved, {
      command: "/opt/cf/bin/cyclefix",
      args: ["serve", "--stdio"],
      source: "cyclefix.serverCommand",
    });
  });

  test("a serverCommand that says serve is kept, with --stdio added once", () => {
    assert.deepEqual(withServeArgs(["cyclefix", "serve", "--log-level", "debug"]), [
      "cyclefix",
      "serve",
      "--log-level",
      "debug",
      "--stdio",
    ]);
    assert.deepEqual(withServeArgs(["cyclefix", "serve", "--stdio"]), ["cyclefix", "serve", "--stdio"]);
    assert.deepEqual(withServeArgs(["python3", "-m", "cyclefix.cli"]), [
      "python3",
      "-m",
      "cyclefix.cli",
      "serve",
      "--stdio",
    ]);
  });

  test("a string serverCommand is one program; an empty one is unset", () => {
    const resolved = resolveServerCommand({
      serverCommand: "/a b/cyclefix",
      isExecutable: () => false,
    });
    assert.ok(!("error" in resolved));
    assert.equal(resolved.command, "/a b/cyclefix");
    const unset = resolveServerCommand({
      serverCommand: [""],
      pathEnv: "/usr/bin",
      isExecutable: executables(["/usr/bin/cyclefix"]),
    });
    assert.ok(!("error" in unset));
    assert.equal(unset.command, "/usr/bin/cyclefix");
  });

  test("a bad serverCommand is an error", () => {
    const resolved = resolveServerCommand({ serverCommand: [1, 2], isExecutable: () => true });
    assert.ok("error" in resolved);
    assert.match(resolved.error, /list of strings/);
  });

  test("cyclefix on PATH comes first, in PATH order", () => {
    const resolved = resolveServerCommand({
      python: "/proj/.venv/bin/python",
      pathEnv: "/home/u/bin::/usr/local/bin:/usr/bin",
      platform: "linux",
      isExecutable: executables(["/usr/local/bin/cyclefix", "/usr/bin/cyclefix", "/proj/.venv/bin/cyclefix"]),
    });
    assert.deepEqual(resolved, {
      command: "/usr/local/bin/cyclefix",
      args: ["serve", "--stdio"],
      source: "cyclefix on PATH",
    });
  });

  test("then the cyclefix script beside cyclefix.python, then beside the selected Python", () => {
    const both = {
      python: "/proj/.venv/bin/python",
      selectedPython: "/cf/.venv/bin/python3",
      pathEnv: "/usr/bin",
      platform: "linux" as const,
    };
    const first = resolveServerCommand({
      ...both,
      isExecutable: executables(["/proj/.venv/bin/cyclefix", "/cf/.venv/bin/cyclefix"]),
    });
    assert.ok(!("error" in first));
    assert.equal(first.command, "/proj/.venv/bin/cyclefix");
    assert.equal(first.source, "cyclefix beside cyclefix.python");
    const second = resolveServerCommand({
      ...both,
      isExecutable: executables(["/cf/.venv/bin/cyclefix"]),
    });
    assert.ok(!("error" in second));
    assert.equal(second.command, "/cf/.venv/bin/cyclefix");
    assert.equal(second.source, "cyclefix beside the Python extension's interpreter");
  });

  test("else python -m cyclefix.cli of the first interpreter", () => {
    const resolved = resolveServerCommand({
      selectedPython: "/usr/bin/python3",
      pathEnv: "/usr/bin",
      platform: "linux",
      isExecutable: () => false,
    });
    assert.deepEqual(resolved, {
      command: "/usr/bin/python3",
      args: ["-m", "cyclefix.cli", "serve", "--stdio"],
      source: "the Python extension's interpreter (python -m cyclefix.cli)",
    });
  });

  test("nothing found: an error naming what was tried", () => {
    const resolved = resolveServerCommand({ pathEnv: "/usr/bin", isExecutable: () => false });
    assert.ok("error" in resolved);
    assert.match(resolved.error, /not found/);
    assert.deepEqual(resolved.tried, ["`cyclefix` on PATH"]);
    assert.match(startFailureMessage(undefined, resolved.error), /cyclefix\.serverCommand/);
  });

  test("Windows lookup uses ; and .exe", () => {
    const found = findOnPath("cyclefix", "C:\\a;C:\\b", "win32", (f) => f === "C:\\b\\cyclefix.exe");
    assert.equal(found, "C:\\b\\cyclefix.exe");
  });

  test("the failure message shows the command as typed", () => {
    const command = { command: "/a b/python", args: ["-m", "cyclefix.cli", "serve", "--stdio"], source: "x" };
    assert.equal(describeCommand(command), "'/a b/python' -m cyclefix.cli serve --stdio");
    const message = startFailureMessage(command, "spawn ENOENT");
    assert.match(message, /could not start \(`'\/a b\/python' -m cyclefix.cli serve --stdio`, from x\): spawn ENOENT/);
  });
});

describe("commands", () => {
  const file = "file:///proj/stats.py";

  test("arguments from code actions pass through unchanged", () => {
    assert.deepEqual(commandArguments("cyclefix.showDiff", ["fix-3"], file), ["fix-3"]);
    assert.deepEqual(commandArguments("cyclefix.refine", [file], undefined), [file]);
    assert.equal(isInteractiveCall(["fix-3"]), false);
  });

  test("palette calls target the active file in the form each command takes", () => {
    assert.equal(isInteractiveCall([]), true);
    assert.equal(isInteractiveCall([undefined]), true);
    assert.deepEqual(commandArguments("cyclefix.runTests", [], file), [file]);
    assert.deepEqual(commandArguments("cyclefix.refine", [], file), [file]);
    assert.deepEqual(commandArguments("cyclefix.cancel", [], file), [file]);
    assert.deepEqual(commandArguments("cyclefix.applyFix", [], file), [{ uri: file }]);
    assert.deepEqual(commandArguments("cyclefix.showDiff", [undefined], file), [{ uri: file }]);
  });

  test("no active file: no arguments (the server uses the workspace / cancels everything)", () => {
    for (const command of SERVER_COMMANDS) {
      assert.deepEqual(commandArguments(command, [], undefined), []);
    }
  });

  test("results are summarized for people", () => {
    assert.equal(
      summarizeResult("cyclefix.runTests", { ran: true, passed: 3, failed: 2, collectionErrors: 0, failing: [] }),
      "cyclefix: 3 passed, 2 failed",
    );
    assert.equal(
      summarizeResult("cyclefix.runTests", { ran: true, passed: 0, failed: 0, collectionErrors: 1 }),
      "cyclefix: 0 passed, 0 failed, 1 collection error",
    );
    assert.equal(
      summarizeResult("cyclefix.runTests", { ran: false, syntaxErrors: 2 }),
      "cyclefix: tests not run: 2 syntax errors",
    );
    assert.match(summarizeResult("cyclefix.refine", { status: "fixed", fixId: "fix-4" }) ?? "", /verified fix fix-4/);
    assert.equal(
      summarizeResult("cyclefix.refine", { status: "already_passing", fixId: null }),
      "cyclefix: the tests already pass: nothing to refine",
    );
    assert.equal(
      summarizeResult("cyclefix.refine", { status: "budget_exhausted", fixId: null }),
      "cyclefix: no verified fix (budget exhausted)",
    );
    assert.equal(summarizeResult("cyclefix.cancel", { cancelled: 1 }), "cyclefix: cancelled 1 run");
    assert.equal(summarizeResult("cyclefix.cancel", { cancelled: 0 }), "cyclefix: nothing to cancel");
    assert.equal(summarizeResult("cyclefix.applyFix", { applied: true, fixId: "fix-1" }), undefined);
    assert.equal(
      summarizeResult("cyclefix.applyFix", { applied: false, failureReason: "version changed" }),
      "cyclefix: the fix was not applied: version changed",
    );
    assert.equal(summarizeResult("cyclefix.showDiff", { path: "/tmp/x.diff" }), undefined);
    assert.equal(summarizeResult("cyclefix.runTests", null), undefined);
  });
});

describe("progress and crashes", () => {
  test("progress text keeps the title of the begin", () => {
    assert.equal(
      progressText({ kind: "begin", title: "cyclefix: tests" }, undefined),
      "$(sync~spin) cyclefix: cyclefix: tests",
    );
    assert.equal(
      progressText({ kind: "report", message: "3/5 tests pass" }, "Running tests"),
      "$(sync~spin) cyclefix: Running tests: 3/5 tests pass",
    );
    assert.equal(progressText({ kind: "report" }, undefined), "$(sync~spin) cyclefix: working");
    assert.equal(progressText({ kind: "end" }, "Running tests"), undefined);
  });

  test("a server that never started is not restarted; one that keeps crashing stops", () => {
    assert.equal(new CrashPolicy().shouldRestart(0, false), false);
    const policy = new CrashPolicy(3, 1000);
    assert.equal(policy.shouldRestart(0, true), true);
    assert.equal(policy.shouldRestart(100, true), true);
    assert.equal(policy.shouldRestart(200, true), false);
    const spaced = new CrashPolicy(3, 1000);
    for (const now of [0, 2000, 4000, 6000]) {
      assert.equal(spaced.shouldRestart(now, true), true);
    }
  });
});

describe("diff", () => {
  const before = "def f(x):\n    return x\n\n\ndef median(values):\n    n = len(values)\n    return values[n // 2]\n";
  const diff =
    "--- a/pkg/stats.py\n+++ b/pkg/stats.py\n@@ -5,3 +5,4 @@\n def median(values):\n-    n = len(values)\n-    return values[n // 2]\n+    ordered = sorted(values)\n+    n = len(ordered)\n+    return ordered[n // 2]\n";

  test("the server's diff file name gives the fix id and the project folder's name", () => {
    assert.deepEqual(parseDiffFileName("/tmp/cyclefix-fixes/fix-12-my-proj.diff"), {
      fixId: "fix-12",
      rootName: "my-proj",
    });
    assert.deepEqual(parseDiffFileName("/run/user/1000/cyclefix-fixes-k2j4_x9a/fix-3-stats.diff"), {
      fixId: "fix-3",
      rootName: "stats",
    });
    assert.equal(parseDiffFileName("/tmp/other/fix-12-proj.diff"), undefined);
    assert.equal(parseDiffFileName("/tmp/cyclefix-fixesX/fix-12-proj.diff"), undefined);
    assert.equal(parseDiffFileName("/tmp/cyclefix-fixes/notes.diff"), undefined);
  });

  test("a difflib diff applies to the text it was made from", () => {
    const [patch] = parseUnifiedDiff(diff);
    assert.equal(patch.path, "pkg/stats.py");
    assert.equal(patch.hunks.length, 1);
    assert.equal(
      applyPatch(before, patch),
      "def f(x):\n    return x\n\n\ndef median(values):\n    ordered = sorted(values)\n    n = len(ordered)\n    return ordered[n // 2]\n",
    );
  });

  test("a changed file is refused", () => {
    const [patch] = parseUnifiedDiff(diff);
    assert.throws(() => applyPatch(before.replace("n = len", "m = len"), patch), /does not match/);
  });

  test("no newline at the end, several hunks and several files", () => {
    const old = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"].join("\n");
    const text =
      "--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n-a\n+A\n b\n@@ -11,2 +11,2 @@\n k\n-l\n\\ No newline at end of file\n+L\n\\ No newline at end of file\n" +
      "--- a/y.py\n+++ b/y.py\n@@ -0,0 +1,1 @@\n+new\n";
    const [x, y] = parseUnifiedDiff(text);
    assert.equal(applyPatch(old, x), ["A", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "L"].join("\n"));
    assert.equal(y.path, "y.py");
    assert.equal(applyPatch("", y), "new\n");
  });

  test("CRLF lines survive", () => {
    const crlf = "x = 1\r\ny = 2\r\n";
    const [patch] = parseUnifiedDiff("--- a/c.py\n+++ b/c.py\n@@ -2 +2 @@\n-y = 2\r\n+y = 3\r\n");
    assert.equal(applyPatch(crlf, patch), "x = 1\r\ny = 3\r\n");
  });

  test("a malformed diff throws", () => {
    assert.throws(() => parseUnifiedDiff("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n"), /ends inside a hunk/);
    assert.throws(() => parseUnifiedDiff("--- a/x\n+++ b/x\n@@ nonsense\n"), /bad hunk header/);
  });

  test("the project root is found from an open file's folder by name and content", () => {
    const files = new Set(["/home/u/work/proj/pkg/stats.py", "/home/u/other/proj/pkg/misc.py"]);
    const exists = (file: string) => files.has(file);
    assert.equal(
      findProjectRoot(["pkg/stats.py"], "proj", ["/home/u/other/proj/pkg", "/home/u/work/proj/pkg/sub"], exists),
      "/home/u/work/proj",
    );
    assert.equal(findProjectRoot(["pkg/stats.py"], "nope", ["/home/u/work/proj/pkg"], exists), undefined);
  });
});
