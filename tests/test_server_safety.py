"""The server under hostile input: bad URIs, diffs in a private folder, long files diffed fast."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from server_support import (
    LOG_DIR,
    SERVER_COMMAND,
    Editor,
    apply_text_edits,
    copy_project,
    json_object,
    lsp_fixture,
    scripted,
    server_env,
    wait_for,
)

from cyclefix.server.diagnostics import CODE_FIX
from cyclefix.server.edits import minimal_edits
from cyclefix.server.server import CyclefixServer

LOG_DIR.mkdir(parents=True, exist_ok=True)
RUNTIME_DIR = LOG_DIR / "runtime"
pytestmark = pytest.mark.timeout(180)


@lsp_fixture(
    ClientServerConfig(
        server_command=SERVER_COMMAND,
        server_env=server_env(XDG_RUNTIME_DIR=str(RUNTIME_DIR)),
    )
)
async def client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    RUNTIME_DIR.mkdir(mode=0o700, exist_ok=True)
    yield
    await lsp_client.shutdown_session()


async def test_a_nul_in_a_uri_is_a_warning_not_an_internal_error(
    client: LanguageClient, tmp_path: Path
) -> None:
    project = copy_project(tmp_path)
    editor = Editor(client)
    await editor.initialize(project, {"model": scripted("median_fix.json"), "debounce": 0})
    bad = editor.open(project / "stats.py").replace("stats.py", "st%00ats.py")
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=bad))
    )
    warning = await wait_for(
        lambda: [m for m in client.messages if "not a usable file path" in m.message],
        "a warning about the URI",
    )
    assert warning[0].type == types.MessageType.Warning and "\n" not in warning[0].message
    assert not [m for m in client.messages if "internal error" in m.message]


async def test_the_diff_is_written_to_a_private_folder(
    client: LanguageClient, tmp_path: Path
) -> None:
    project = copy_project(tmp_path)
    editor = Editor(client)
    await editor.initialize(project, {"model": scripted("median_fix.json"), "debounce": 0})
    doc = editor.open(project / "stats.py")
    editor.save(doc)
    found = await wait_for(
        lambda: editor.diagnostics(project / "stats.py", CODE_FIX), "a fix", timeout=120
    )
    fix_id = json_object(found[0].data)["fixId"]
    shown = json_object(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cyclefix.showDiff", arguments=[fix_id])
        )
    )
    folder = Path(shown["path"]).parent
    assert folder.parent == RUNTIME_DIR and folder.name.startswith("cyclefix-fixes-")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert folder.stat().st_uid == os.getuid()


def test_a_one_function_fix_of_a_40k_line_repetitive_file_is_diffed_fast() -> None:
    filler = "x = 1\n" * 20_000
    old = filler + "def f():\n    return 0\n" + filler
    new = filler + "def f():\n    return 1\n" + filler
    started = time.monotonic()
    edits = minimal_edits(old, new)
    assert time.monotonic() - started < 1.0
    assert len(edits) == 1 and edits[0].range.start.line == 20_001
    assert apply_text_edits(old, edits) == new


def test_a_file_on_disk_is_read_in_its_declared_encoding(tmp_path: Path) -> None:
    source = tmp_path / "latin.py"
    text = "# -*- coding: latin-1 -*-\r\nNAME = 'caf\u00e9'\r\n"
    source.write_bytes(text.encode("latin-1"))
    assert CyclefixServer().text_of(source) == text
