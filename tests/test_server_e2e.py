"""End to end: the real `cyclefix serve` process over stdio, driven by a pytest-lsp client.

These use a scripted backend (replies from a JSON file) so they run in seconds; the test
marked `model` uses the real 0.5B GGUF.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient as BaseLanguageClient
from pytest_lsp import ClientServerConfig, LanguageClient
from server_support import (
    LOG_DIR,
    SERVER_COMMAND,
    Editor,
    copy_project,
    json_object,
    lsp_fixture,
    pytest_passes,
    scripted,
    send_raw,
    server_env,
    uri,
    wait_for,
)

from cyclefix.server.diagnostics import CODE_FIX, CODE_SUSPECT, CODE_SYNTAX, CODE_TEST_FAILED

LOG_DIR.mkdir(parents=True, exist_ok=True)
pytestmark = pytest.mark.timeout(180)


@lsp_fixture(ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    yield
    await lsp_client.shutdown_session()


@lsp_fixture(
    ClientServerConfig(
        server_command=SERVER_COMMAND,
        # No models installed here: a registry model is missing.
        server_env=server_env(CYCLEFIX_MODELS_DIR=str(LOG_DIR / "no-models")),
    )
)
async def client_without_models(lsp_client: LanguageClient) -> AsyncIterator[None]:
    yield
    await lsp_client.shutdown_session()


def _options(reply_file: str = "median_fix.json", **extra: Any) -> dict[str, Any]:
    return {"model": scripted(reply_file), "debounce": 0, **extra}


async def _fix_offered(editor: Editor, source: Path) -> types.Diagnostic:
    found = await wait_for(
        lambda: editor.diagnostics(source, CODE_FIX), "a verified fix diagnostic", timeout=120
    )
    return found[0]


async def _no_fix_offered(editor: Editor, doc: str, source: Path) -> None:
    """No fix, checked after a round trip: the server has handled all that came before."""
    titles = [a.title for a in await editor.code_actions(doc)]
    assert "Apply verified fix" not in titles, titles
    assert not editor.diagnostics(source, CODE_FIX)


async def _ended_without_refining(editor: Editor) -> None:
    """The job's progress ends on its test summary: it finished, and refined nothing."""
    ends = await wait_for(
        lambda: [m for k, m in editor.progress_messages() if k == "end"], "the progress end"
    )
    assert (ends[-1] or "").startswith("3/5 tests pass, 2 failing"), ends
    reports = [m or "" for k, m in editor.progress_messages() if k == "report"]
    assert not any(m.startswith(("Refining", "loading model")) for m in reports), reports


@pytest.mark.parametrize("client_name", ["visual-studio-code", "neovim", "emacs"])
async def test_save_runs_tests_refines_and_applies_a_verified_fix(
    client: LanguageClient, tmp_path: Path, client_name: str
) -> None:
    project = copy_project(tmp_path)
    source, test_file = project / "stats.py", project / "tests" / "test_stats.py"
    editor = Editor(client)
    await editor.initialize(project, _options(), client_name)
    doc = editor.open(source)
    editor.save(doc)

    # Failing tests: an Error in the test file, linked to one on the suspect function.
    failed = await wait_for(
        lambda: editor.diagnostics(test_file, CODE_TEST_FAILED), "test failure diagnostics"
    )
    assert {d.message.split(" failed")[0] for d in failed} == {
        "test_median_unsorted",
        "test_median_even",
    }
    assert all(d.source == "cyclefix" for d in failed)
    unsorted = next(d for d in failed if d.message.startswith("test_median_unsorted"))
    assert "assert median([3, 1, 2]) == 2" in unsorted.message
    assert unsorted.range.start.line == 12  # the assert line of test_median_unsorted
    assert unsorted.related_information and unsorted.related_information[0].location.uri == doc
    (suspect,) = await wait_for(
        lambda: editor.diagnostics(source, CODE_SUSPECT), "the suspect diagnostic"
    )
    assert suspect.message.startswith("median() fails 2 tests")
    assert suspect.range.start.line == 8  # def median

    # Then the refinement: an Information on median() and three quick fixes.
    info = await _fix_offered(editor, source)
    assert info.severity == types.DiagnosticSeverity.Information
    assert info.message == "verified fix available (5 tests pass)"
    assert info.range.start.line == 8
    actions = await editor.code_actions(doc)
    titles = [a.title for a in actions]
    assert titles == ["Apply verified fix", "Show fix as diff", "Refine again"]
    assert all(a.kind == types.CodeActionKind.QuickFix for a in actions)
    apply = actions[0]
    if client_name == "emacs":
        # Emacs 29 announces no codeAction/resolve: the edit comes with the action.
        assert apply.edit is not None
        resolved = apply
    else:
        assert apply.edit is None, "the edit is computed in codeAction/resolve"
        resolved = await client.code_action_resolve_async(apply)
    assert resolved.edit is not None
    editor.apply_workspace_edit(resolved.edit)
    # Minimal edits: the fix touches only the body of median(), not the whole file.
    if client_name == "neovim":  # Neovim announces no documentChanges support
        assert resolved.edit.document_changes is None and resolved.edit.changes is not None
        text_edits = list(resolved.edit.changes[doc])
    else:
        (doc_edit,) = resolved.edit.document_changes or []
        assert isinstance(doc_edit, types.TextDocumentEdit)
        assert doc_edit.text_document.version == editor.versions[doc] - 1
        text_edits = [e for e in doc_edit.edits if isinstance(e, types.TextEdit)]
    assert text_edits and all(9 <= e.range.start.line <= 15 for e in text_edits)
    assert "ordered = sorted(values)" in editor.texts[doc]
    # The applied edit makes the fix stale: it is no longer offered.
    await wait_for(lambda: not editor.diagnostics(source, CODE_FIX), "the fix notice to go")
    editor.save(doc)

    # Fixed tests clear their diagnostics.
    await wait_for(
        lambda: not editor.diagnostics(test_file) and not editor.diagnostics(source),
        "diagnostics to clear",
    )
    assert pytest_passes(project).returncode == 0


async def test_a_wrong_candidate_is_never_offered(client: LanguageClient, tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    editor = Editor(client)
    await editor.initialize(project, _options("median_wrong.json", rounds=2))
    doc = editor.open(project / "stats.py")
    editor.save(doc)
    await wait_for(
        lambda: [m for m in client.log_messages if "no verified fix" in m.message],
        "the refinement to give up",
        timeout=120,
    )
    assert not editor.diagnostics(project / "stats.py", CODE_FIX)
    assert [a.title for a in await editor.code_actions(doc)] == ["Refine with cyclefix"]
    # The progress end follows the log message, so it may still be on its way.
    ends = await wait_for(
        lambda: [m for k, m in editor.progress_messages() if k == "end"], "the progress end"
    )
    assert (ends[-1] or "").startswith("no verified fix"), ends


async def test_progress_begin_report_end(client: LanguageClient, tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    editor = Editor(client)
    await editor.initialize(project, _options())
    doc = editor.open(project / "stats.py")
    editor.save(doc)
    await _fix_offered(editor, project / "stats.py")
    await wait_for(
        lambda: any(kind == "end" for kind, _ in editor.progress_messages()), "progress end"
    )
    messages = editor.progress_messages()
    kinds = [kind for kind, _ in messages]
    assert kinds[0] == "begin" and kinds[-1] == "end"
    reports = [m or "" for kind, m in messages if kind == "report"]
    assert any(m == "3/5 tests pass" for m in reports), reports
    assert any(m.startswith("Refining `median()`: round 1/") for m in reports), reports
    assert messages[-1][1] == "verified fix available (5 tests pass)"


async def test_show_diff_and_apply_fix_commands(client: LanguageClient, tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    source = project / "stats.py"
    editor = Editor(client)
    await editor.initialize(project, _options())
    doc = editor.open(source)
    editor.save(doc)
    info = await _fix_offered(editor, source)
    fix_id = json_object(info.data)["fixId"]

    shown = json_object(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cyclefix.showDiff", arguments=[fix_id])
        )
    )
    assert shown["shownAsDocument"] is True
    assert client.shown_documents[-1].uri == uri(Path(shown["path"]))
    diff = Path(shown["path"]).read_text()
    assert "+    ordered = sorted(values)" in diff

    applied = json_object(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cyclefix.applyFix", arguments=[{"uri": doc}])
        )
    )
    assert applied["applied"] is True
    # The server never wrote the file itself: the editor's buffer changed, the disk did not.
    assert "ordered = sorted(values)" not in source.read_text()
    assert "ordered = sorted(values)" in editor.texts[doc]
    editor.save(doc)
    await wait_for(lambda: not editor.diagnostics(source), "diagnostics to clear")
    assert pytest_passes(project).returncode == 0


async def test_stale_fix_is_never_offered(client: LanguageClient, tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    source = project / "stats.py"
    editor = Editor(client)
    await editor.initialize(project, _options())
    doc = editor.open(source)
    editor.save(doc)
    await _fix_offered(editor, source)
    stale_action = (await editor.code_actions(doc))[0]

    # The user types (version 2): the fix was computed for version 1.
    editor.change(
        doc,
        [
            types.TextEdit(
                range=types.Range(
                    start=types.Position(line=0, character=0),
                    end=types.Position(line=0, character=0),
                ),
                new_text="# edited\n",
            )
        ],
    )
    await wait_for(lambda: not editor.diagnostics(source, CODE_FIX), "the fix notice to go")
    titles = [a.title for a in await editor.code_actions(doc)]
    assert "Apply verified fix" not in titles
    assert titles == ["Refine with cyclefix"]
    with pytest.raises(JsonRpcException, match="no verified fix"):
        await client.code_action_resolve_async(stale_action)
    with pytest.raises(JsonRpcException, match="no verified fix"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cyclefix.applyFix", arguments=[doc])
        )
    assert editor.applied_edits == []


async def test_cancel_command_stops_refinement(client: LanguageClient, tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    source = project / "stats.py"
    editor = Editor(client)
    await editor.initialize(project, _options("median_slow.json"))
    doc = editor.open(source)
    editor.save(doc)
    await wait_for(
        lambda: any((m or "").startswith("Refining") for _, m in editor.progress_messages()),
        "refinement to start",
    )
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="cyclefix.cancel", arguments=[doc])
    )
    assert result == {"cancelled": 1}
    await wait_for(
        lambda: any(kind == "end" for kind, _ in editor.progress_messages()), "progress end"
    )
    assert (next(m for k, m in editor.progress_messages() if k == "end") or "").startswith(
        "cancelled"
    )
    # Cancelling ended the job's task with its progress: nothing of it can be published.
    await _no_fix_offered(editor, doc, source)
    # The test failures stay.
    assert editor.diagnostics(project / "tests" / "test_stats.py", CODE_TEST_FAILED)


async def test_progress_cancel_by_user(client: LanguageClient, tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    editor = Editor(client)
    await editor.initialize(project, _options("median_slow.json"))
    doc = editor.open(project / "stats.py")
    editor.save(doc)
    await wait_for(
        lambda: any((m or "").startswith("Refining") for _, m in editor.progress_messages()),
        "refinement to start",
    )
    (token,) = client.progress_reports
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    await wait_for(
        lambda: any(kind == "end" for kind, _ in editor.progress_messages()), "progress end"
    )
    await _no_fix_offered(editor, doc, project / "stats.py")


async def test_cancel_request_is_honoured(client: LanguageClient, tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    editor = Editor(client)
    await editor.initialize(project, _options("median_slow.json", autoRefine=False))
    doc = editor.open(project / "stats.py")
    request = asyncio.wrap_future(
        client.protocol.send_request(
            types.WORKSPACE_EXECUTE_COMMAND,
            types.ExecuteCommandParams(command="cyclefix.refine", arguments=[doc]),
            msg_id="refine-1",
        )
    )
    await wait_for(
        lambda: any((m or "").startswith("Refining") for _, m in editor.progress_messages()),
        "refinement to start",
    )
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="refine-1"))
    with pytest.raises(JsonRpcException, match="cancel"):
        await asyncio.wait_for(request, 30)
    await wait_for(
        lambda: any(kind == "end" for kind, _ in editor.progress_messages()), "progress end"
    )
    await _no_fix_offered(editor, doc, project / "stats.py")


async def test_newer_save_wins(client: LanguageClient, tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    source = project / "stats.py"
    editor = Editor(client)
    # 5 s a reply: in flight when the second save comes, and the second reply is awaited.
    await editor.initialize(project, _options("median_delayed.json"))
    doc = editor.open(source)
    editor.save(doc)
    await wait_for(
        lambda: any((m or "").startswith("Refining") for _, m in editor.progress_messages()),
        "refinement to start",
    )
    editor.save(doc)  # a second save cancels the refinement in flight and starts again
    await _fix_offered(editor, source)

    def ends() -> list[str | None]:
        return [m for k, m in editor.progress_messages() if k == "end"]

    # The progress end follows the diagnostic, so it may still be on its way.
    await wait_for(lambda: "verified fix available (5 tests pass)" in ends(), "the progress end")
    assert any((m or "").startswith("cancelled") for m in ends()), ends()
    assert ends()[-1] == "verified fix available (5 tests pass)"


async def test_run_tests_command_and_auto_refine_off(
    client: LanguageClient, tmp_path: Path
) -> None:
    project = copy_project(tmp_path)
    editor = Editor(client)
    await editor.initialize(project, _options(autoRefine=False))
    doc = editor.open(project / "stats.py")
    summary = json_object(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cyclefix.runTests", arguments=[doc])
        )
    )
    assert summary["passed"] == 3 and summary["failed"] == 2
    assert sorted(summary["failing"]) == [
        "tests/test_stats.py::test_median_even",
        "tests/test_stats.py::test_median_unsorted",
    ]
    await _ended_without_refining(editor)
    assert not editor.diagnostics(project / "stats.py", CODE_FIX), "autoRefine is off"
    titles = [a.title for a in await editor.code_actions(doc)]
    assert titles == ["Refine with cyclefix"]
    result = json_object(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cyclefix.refine", arguments=[doc])
        )
    )
    assert result["status"] == "fixed" and result["fixId"]
    assert editor.diagnostics(project / "stats.py", CODE_FIX)


async def test_bad_configuration_warns_and_uses_defaults(
    client: LanguageClient, tmp_path: Path
) -> None:
    project = copy_project(tmp_path)
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text() + "\n[tool.cyclefix]\nrounds = 0\n"
    )
    editor = Editor(client)
    await editor.initialize(
        project, {"model": scripted("median_fix.json"), "debounce": "soon", "colour": 1}
    )
    await wait_for(lambda: len(client.messages) >= 2, "two warnings")
    texts = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert any("debounce must be a number of seconds" in t for t in texts), texts
    assert any("unknown setting 'colour'" in t for t in texts), texts
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"cyclefix": {"autoRefine": "sometimes"}})
    )
    doc = editor.open(project / "stats.py")
    editor.save(doc)
    # Still serving with defaults: tests run, the fix comes (autoRefine stayed true).
    await _fix_offered(editor, project / "stats.py")
    texts = [m.message for m in client.messages]
    assert any("autoRefine must be true or false" in t for t in texts), texts
    assert any("rounds must be a whole number" in t for t in texts), texts


async def test_missing_model_still_gives_diagnostics(
    client_without_models: LanguageClient, tmp_path: Path
) -> None:
    client = client_without_models
    project = copy_project(tmp_path)
    editor = Editor(client)
    await editor.initialize(project, {"model": "qwen2.5-coder-0.5b", "debounce": 0})
    doc = editor.open(project / "stats.py")
    editor.save(doc)
    await wait_for(
        lambda: editor.diagnostics(project / "tests" / "test_stats.py", CODE_TEST_FAILED),
        "test failure diagnostics",
    )
    message = await wait_for(
        lambda: [m for m in client.messages if "not installed" in m.message], "a model message"
    )
    assert "cyclefix models install qwen2.5-coder-0.5b" in message[0].message
    assert message[0].type == types.MessageType.Warning


async def test_syntax_error_is_a_diagnostic_and_nothing_is_refined(
    client: LanguageClient, tmp_path: Path
) -> None:
    project = copy_project(tmp_path)
    source = project / "stats.py"
    editor = Editor(client)
    await editor.initialize(project, _options())
    doc = editor.open(source)
    editor.replace_all(doc, editor.texts[doc].replace("def mean(", "def mean(:"))
    editor.save(doc)
    (problem,) = await wait_for(lambda: editor.diagnostics(source, CODE_SYNTAX), "syntax error")
    assert problem.range.start.line == 3
    # The job's last act: it says it skipped the run.
    await wait_for(
        lambda: [m for m in client.log_messages if "tests not run" in m.message], "the skip"
    )
    assert not editor.diagnostics(source, CODE_FIX)
    assert not client.progress_reports, "no test run, no refinement"
    # Fixing the syntax clears it, and the tests run.
    editor.replace_all(doc, editor.texts[doc].replace("def mean(:", "def mean("))
    editor.save(doc)
    await wait_for(lambda: editor.diagnostics(source, CODE_SUSPECT), "test diagnostics")
    assert not editor.diagnostics(source, CODE_SYNTAX)


async def test_robustness_bad_requests_and_odd_files(
    client: LanguageClient, tmp_path: Path
) -> None:
    project = copy_project(tmp_path)
    editor = Editor(client)
    await editor.initialize(project, _options())
    # A malformed request gets an error answer, not silence; broken JSON is skipped.
    send_raw(client, b"{not json")
    with pytest.raises(JsonRpcException, match="Invalid params"):
        await asyncio.wait_for(
            send_raw(
                client,
                {
                    "jsonrpc": "2.0",
                    "id": "bad-1",
                    "method": types.TEXT_DOCUMENT_CODE_ACTION,
                    "params": {"textDocument": {"uri": 3}},
                },
            ),
            10,
        )
    with pytest.raises(JsonRpcException, match="Method Not Found"):
        await asyncio.wait_for(
            send_raw(client, {"jsonrpc": "2.0", "id": "bad-2", "method": "cyclefix/nothing"}), 10
        )
    # Unknown URIs, other schemes, non-Python files: nothing to offer, no crash.
    unknown = await editor.code_actions(uri(tmp_path / "nowhere.py"))
    assert unknown == []
    untitled = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri="untitled:Untitled-1"),
            range=types.Range(
                start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)
            ),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert untitled is None
    notes = project / "notes.txt"
    notes.write_text("hello\n")
    editor.save(editor.open(notes))
    outside = tmp_path / "loose.py"
    outside.write_text("x = 1\n")
    editor.save(editor.open(outside))
    with pytest.raises(JsonRpcException):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cyclefix.applyFix", arguments=[42])
        )
    with pytest.raises(JsonRpcException):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cyclefix.noSuchCommand")
        )
    # Still serving: a save of the real module gives diagnostics.
    doc = editor.open(project / "stats.py")
    editor.save(doc)
    await wait_for(lambda: editor.diagnostics(project / "stats.py", CODE_SUSPECT), "diagnostics")
    assert not editor.diagnostics(notes) and not editor.diagnostics(outside)


async def test_diagnostics_survive_saves_of_other_files(
    client: LanguageClient, tmp_path: Path
) -> None:
    project = copy_project(tmp_path)
    (project / "other.py").write_text("def double(x):\n    return 2 * x\n")
    (project / "tests" / "test_other.py").write_text(
        "from other import double\n\n\ndef test_double():\n    assert double(2) == 4\n"
    )
    editor = Editor(client)
    await editor.initialize(project, _options(autoRefine=False))
    stats_doc = editor.open(project / "stats.py")
    editor.save(stats_doc)
    await wait_for(lambda: editor.diagnostics(project / "stats.py", CODE_SUSPECT), "diagnostics")
    before = editor.diagnostics(project / "tests" / "test_stats.py")
    other_doc = editor.open(project / "other.py")
    editor.save(other_doc)
    summary = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="cyclefix.runTests", arguments=[other_doc])
    )
    assert summary == {
        "root": str(project),
        "ran": True,
        "passed": 1,
        "failed": 0,
        "collectionErrors": 0,
        "failing": [],
    }
    # The run's progress ends after it published its diagnostics.
    await wait_for(
        lambda: ("end", "1/1 tests pass") in editor.progress_messages(), "the run's progress end"
    )
    assert editor.diagnostics(project / "tests" / "test_stats.py") == before
    assert editor.diagnostics(project / "stats.py", CODE_SUSPECT)


@pytest.mark.model
@pytest.mark.timeout(900)
async def test_real_model_offers_a_verified_fix(client: LanguageClient, tmp_path: Path) -> None:
    project = copy_project(tmp_path, "parity")
    source = project / "parity.py"
    editor = Editor(client)
    await editor.initialize(
        project, {"model": "qwen2.5-coder-0.5b", "debounce": 0, "rounds": 4, "budget": 600}
    )
    doc = editor.open(source)
    editor.save(doc)

    def outcome() -> str | None:
        if editor.diagnostics(source, CODE_FIX):
            return "fixed"
        if any("no verified fix" in m.message for m in client.log_messages):
            return "not fixed"
        return None

    assert await wait_for(outcome, "the refinement to end", timeout=800) == "fixed"
    actions = await editor.code_actions(doc)
    assert actions[0].title == "Apply verified fix"
    resolved = await client.code_action_resolve_async(actions[0])
    assert resolved.edit is not None
    editor.apply_workspace_edit(resolved.edit)
    editor.save(doc)
    await wait_for(lambda: not editor.diagnostics(source), "diagnostics to clear", timeout=120)
    assert pytest_passes(project).returncode == 0


async def test_configuration_pull_when_the_client_sends_no_settings(
    client: LanguageClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_project(tmp_path)
    editor = Editor(client)
    await editor.initialize(project, _options())
    # A pull-style client (VS Code) answers workspace/configuration for section "cyclefix".
    client.set_configuration({"autoRefine": False}, section="cyclefix")
    pulled: list[str | None] = []
    answer = client.get_configuration

    def recorded(*, section: str | None = None, scope_uri: str | None = None) -> Any:
        pulled.append(section)
        return answer(section=section, scope_uri=scope_uri)

    monkeypatch.setattr(client, "get_configuration", recorded)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    # Answered before the next request goes out: the server reads the two in that order.
    await wait_for(lambda: "cyclefix" in pulled, "the server to pull its settings")
    doc = editor.open(project / "stats.py")
    summary = json_object(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cyclefix.runTests", arguments=[doc])
        )
    )
    assert summary["failed"] == 2
    await _ended_without_refining(editor)
    assert not editor.diagnostics(project / "stats.py", CODE_FIX), "autoRefine came from the pull"


async def stop(plain: BaseLanguageClient) -> None:
    # pygls leaves `stop` unannotated; it is a coroutine that returns nothing.
    stop_client: Callable[[], Awaitable[None]] = plain.stop
    await stop_client()


async def _start_plain_client(*args: str, logs: list[str] | None = None) -> BaseLanguageClient:
    """A bare client; `logs` collects the server's log messages."""
    plain = BaseLanguageClient("plain", "1")

    def on_log(params: types.LogMessageParams) -> None:
        if logs is not None:
            logs.append(params.message)

    plain.feature(types.WINDOW_LOG_MESSAGE)(on_log)
    for method in (
        types.WINDOW_SHOW_MESSAGE,
        types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
        types.PROGRESS,
        types.WINDOW_WORK_DONE_PROGRESS_CREATE,
    ):
        plain.feature(method)(lambda params: None)
    if args:
        await plain.start_io(*args)
    return plain


async def test_client_disconnecting_mid_run_stops_the_server(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    logs: list[str] = []
    plain = await _start_plain_client(*SERVER_COMMAND, logs=logs)
    await plain.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=uri(project),
            initialization_options=_options("median_slow.json"),
        )
    )
    plain.initialized(types.InitializedParams())
    source = project / "stats.py"
    plain.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri(source), language_id="python", version=1, text=source.read_text()
            )
        )
    )
    plain.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri(source)))
    )
    # The tests ran; the slow model is about to generate.
    await wait_for(lambda: [m for m in logs if m.startswith("stats: ")], "the test summary")
    process = plain._server
    assert process is not None and process.returncode is None
    assert process.stdin is not None
    process.stdin.close()  # the editor goes away without shutdown/exit
    returncode = await asyncio.wait_for(process.wait(), 30)
    assert returncode == 0
    await stop(plain)


async def test_tcp_transport(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = await asyncio.create_subprocess_exec(
        *SERVER_COMMAND, "--tcp", f"127.0.0.1:{port}", stdin=asyncio.subprocess.DEVNULL
    )
    try:
        plain = await _start_plain_client()
        # The server listens once it has imported everything: seconds on a busy machine.
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                await plain.start_tcp("127.0.0.1", port)
                break
            except OSError:
                assert server.returncode is None, "the server exited before listening"
                assert asyncio.get_running_loop().time() < deadline, "the server never listened"
                await asyncio.sleep(0.1)
        result = await plain.initialize_async(
            types.InitializeParams(capabilities=types.ClientCapabilities(), root_uri=None)
        )
        assert result.server_info is not None and result.server_info.name == "cyclefix"
        commands = result.capabilities.execute_command_provider
        assert commands is not None and set(commands.commands) >= {
            "cyclefix.runTests",
            "cyclefix.refine",
            "cyclefix.cancel",
            "cyclefix.applyFix",
            "cyclefix.showDiff",
        }
        await plain.shutdown_async(None)
        plain.exit(None)
        await asyncio.wait_for(server.wait(), 30)
        await stop(plain)
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
