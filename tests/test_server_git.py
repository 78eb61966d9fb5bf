"""serve keeps an applied fix in git as the gitOnApply setting says, like `fix --apply --commit`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from git_support import GIT_ENV, commit_all, git
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient
from server_support import (
    SERVER_COMMAND,
    Editor,
    copy_project,
    json_object,
    lsp_fixture,
    pytest_passes,
    scripted,
    server_env,
    wait_for,
)

from cyclefix.server.diagnostics import CODE_FIX

FIXED_LINE = "ordered = sorted(values)"


@lsp_fixture(ClientServerConfig(server_command=SERVER_COMMAND, server_env=server_env(**GIT_ENV)))
async def client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    yield
    await lsp_client.shutdown_session()


async def _fix_id(editor: Editor, project: Path, git_on_apply: str) -> tuple[str, str]:
    """(document URI, fix id) once a save of stats.py got a verified fix."""
    options = {"model": scripted("median_fix.json"), "debounce": 0, "gitOnApply": git_on_apply}
    await editor.initialize(project, options)
    doc = editor.open(project / "stats.py")
    editor.save(doc)
    found = await wait_for(
        lambda: editor.diagnostics(project / "stats.py", CODE_FIX), "a verified fix", timeout=120
    )
    return doc, json_object(found[0].data)["fixId"]


async def test_apply_with_git_on_apply_commit_commits_the_fix(
    client: LanguageClient, tmp_path: Path
) -> None:
    project = copy_project(tmp_path)
    commit_all(project)
    editor = Editor(client)
    doc, fix_id = await _fix_id(editor, project, "commit")

    # The quick fix runs the command, so the server can commit what it applies.
    apply = next(a for a in await editor.code_actions(doc) if a.title == "Apply verified fix")
    assert apply.edit is None and apply.command is not None
    assert apply.command.command == "cyclefix.applyFix"

    applied = json_object(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cyclefix.applyFix", arguments=[fix_id])
        )
    )
    assert applied["applied"] is True and applied["git"].startswith("committed ")
    assert FIXED_LINE in (project / "stats.py").read_text()
    assert FIXED_LINE in editor.texts[doc]
    subject = git(project, "log", "-1", "--format=%s").strip()
    assert subject.startswith("Fix ") and subject.endswith("(cyclefix)")
    assert git(project, "status", "--porcelain").strip() == ""
    assert pytest_passes(project).returncode == 0


async def test_apply_with_git_on_apply_refuses_a_file_with_uncommitted_changes(
    client: LanguageClient, tmp_path: Path
) -> None:
    project = copy_project(tmp_path)
    commit_all(project)
    source = project / "stats.py"
    source.write_text(source.read_text() + "\n# a note not committed yet\n")
    editor = Editor(client)
    _, fix_id = await _fix_id(editor, project, "commit")

    with pytest.raises(JsonRpcException, match="uncommitted changes"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cyclefix.applyFix", arguments=[fix_id])
        )
    assert FIXED_LINE not in source.read_text()
    assert editor.applied_edits == []
    assert git(project, "log", "--format=%s").strip() == "start"
