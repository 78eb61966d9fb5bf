"""Helpers for the server's end-to-end tests: a simulated editor over a pytest-lsp client."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest_lsp
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from cyclefix.server.edits import code_units

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "server"
REPLIES = FIXTURES / "replies"
LOG_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / "cyclefix-server-tests"
SERVER_COMMAND = [
    sys.executable,
    "-m",
    "cyclefix.cli",
    "serve",
    "--log-file",
    str(LOG_DIR / "server.log"),
    "--log-level",
    "debug",
]

T = TypeVar("T")


def server_env(**extra: str) -> dict[str, str]:
    """A server's environment, built when a test module is imported: this process's, plus the
    suite's rule that pytest children skip entry-point plugins (conftest sets it only once
    tests run; without it every test run in the server costs 1.6-2.6 s of plugin imports)."""
    return {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **extra}


WORK_DONE_PROGRESS = (
    types.WorkDoneProgressBegin,
    types.WorkDoneProgressReport,
    types.WorkDoneProgressEnd,
)


LspFixture = Callable[[LanguageClient], AsyncIterator[None]]


def lsp_fixture(config: ClientServerConfig) -> Callable[[LspFixture], object]:
    """`pytest_lsp.fixture`, typed: it turns the async generator into a pytest fixture."""
    decorate: Callable[[LspFixture], object] = pytest_lsp.fixture(config=config)
    return decorate


def json_object(value: object) -> dict[str, Any]:
    """An `LSPAny` (a command's result, a diagnostic's data) that is a JSON object."""
    assert isinstance(value, dict), f"not a JSON object: {value!r}"
    return value


def uri(path: Path) -> str:
    return from_fs_path(str(path.resolve())) or path.resolve().as_uri()


def copy_project(tmp_path: Path, name: str = "stats") -> Path:
    project = tmp_path / name
    shutil.copytree(FIXTURES / name, project)
    return project.resolve()


def scripted(name: str) -> str:
    return f"scripted:{REPLIES / name}"


def pytest_passes(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def wait_for(predicate: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


def _offset(text: str, pos: types.Position, encoding: str) -> int:
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    i = starts[pos.line]
    units = 0
    while units < pos.character:
        units += code_units(text[i], encoding)
        i += 1
    return i


def apply_text_edits(text: str, edits: list[types.TextEdit], encoding: str = "utf-16") -> str:
    """Apply LSP edits the way an editor does; asserts they neither overlap nor go backwards."""
    spans = [
        (_offset(text, e.range.start, encoding), _offset(text, e.range.end, encoding), e.new_text)
        for e in edits
    ]
    spans.sort(key=lambda s: (s[0], s[1]))
    for (_, end1, _), (start2, _, _) in itertools.pairwise(spans):
        assert end1 <= start2, "edits overlap"
    for start, end, new in reversed(spans):
        text = text[:start] + new + text[end:]
    return text


def send_raw(client: LanguageClient, message: dict[str, Any] | bytes) -> asyncio.Future[Any]:
    """Write one message to the server as given (possibly malformed); a future for its answer.

    The future resolves only for a message with an "id" (the server's response).
    """
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    protocol = client.protocol
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    if isinstance(message, dict) and "id" in message:
        protocol._request_futures[message["id"]] = future
    writer = protocol.writer
    assert writer is not None
    writer.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return asyncio.wrap_future(future)


class Editor:
    """What an editor does over LSP: open, change, save, and apply workspace edits."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.encoding = "utf-16"
        self.applied_edits: list[types.WorkspaceEdit] = []
        self._request_ids = 0

        # Answer workspace/applyEdit like an editor: apply to the buffers, report success.
        def on_apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            return self._on_apply_edit(params)

        client.feature(types.WORKSPACE_APPLY_EDIT)(on_apply_edit)

    async def initialize(
        self,
        root: Path,
        options: dict[str, Any] | None,
        client_name: str = "visual-studio-code",
    ) -> types.InitializeResult:
        result = await self.client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities(client_name),
                root_uri=uri(root),
                workspace_folders=[types.WorkspaceFolder(uri=uri(root), name=root.name)],
                initialization_options=options,
            )
        )
        encoding = result.capabilities.position_encoding
        self.encoding = getattr(encoding, "value", encoding) or "utf-16"
        return result

    def open(self, path: Path) -> str:
        doc_uri = uri(path)
        self.texts[doc_uri] = path.read_text()
        self.versions[doc_uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=doc_uri, language_id="python", version=1, text=self.texts[doc_uri]
                )
            )
        )
        return doc_uri

    def change(self, doc_uri: str, edits: list[types.TextEdit]) -> None:
        """Send `edits` as incremental changes, last first so positions stay valid."""
        ordered = sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character))
        self.versions[doc_uri] += 1
        changes: list[types.TextDocumentContentChangeEvent] = []
        for edit in reversed(ordered):
            changes.append(
                types.TextDocumentContentChangePartial(range=edit.range, text=edit.new_text)
            )
        self.texts[doc_uri] = apply_text_edits(self.texts[doc_uri], ordered, self.encoding)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=doc_uri, version=self.versions[doc_uri]
                ),
                content_changes=changes,
            )
        )

    def replace_all(self, doc_uri: str, text: str) -> None:
        self.versions[doc_uri] += 1
        self.texts[doc_uri] = text
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=doc_uri, version=self.versions[doc_uri]
                ),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def save(self, doc_uri: str) -> None:
        path = Path(types_uri_to_path(doc_uri))
        path.write_text(self.texts[doc_uri])
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=doc_uri))
        )

    def apply_workspace_edit(self, edit: types.WorkspaceEdit) -> None:
        self.applied_edits.append(edit)
        for doc_edit in edit.document_changes or []:
            assert isinstance(doc_edit, types.TextDocumentEdit)
            doc_uri = doc_edit.text_document.uri
            expected = self.versions.get(doc_uri)
            assert doc_edit.text_document.version in (None, expected), "edit for another version"
            text_edits = [e for e in doc_edit.edits if isinstance(e, types.TextEdit)]
            self.change(doc_uri, text_edits)
        for doc_uri, edits in (edit.changes or {}).items():
            self.change(doc_uri, list(edits))

    def _on_apply_edit(
        self, params: types.ApplyWorkspaceEditParams
    ) -> types.ApplyWorkspaceEditResult:
        self.apply_workspace_edit(params.edit)
        return types.ApplyWorkspaceEditResult(applied=True)

    # --------------------------------------------------------------- queries

    def diagnostics(self, path: Path, code: str | None = None) -> list[types.Diagnostic]:
        found = self.client.diagnostics.get(uri(path), [])
        return [d for d in found if code is None or d.code == code]

    async def code_actions(self, doc_uri: str) -> list[types.CodeAction]:
        """The server's code actions for the whole document.

        Read raw: lsprotocol's converter takes a CodeAction that carries a command for a
        Command (both have "title" and "command"); editors tell them apart by the type of
        "command", and so does this.
        """
        diagnostics = list(self.client.diagnostics.get(doc_uri, []))
        params = types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=doc_uri),
            range=types.Range(
                start=types.Position(line=0, character=0),
                end=types.Position(line=0, character=0),
            ),
            context=types.CodeActionContext(diagnostics=diagnostics),
        )
        protocol = self.client.protocol
        self._request_ids += 1
        msg_id = f"code-action-{self._request_ids}"
        future = protocol.send_request(types.TEXT_DOCUMENT_CODE_ACTION, params, msg_id=msg_id)
        protocol._result_types[msg_id] = None  # keep the result as plain JSON
        raw = await asyncio.wrap_future(future)
        result = raw.result if hasattr(raw, "result") else raw
        converter = protocol._converter
        actions = []
        for item in result or []:
            assert not isinstance(item.get("command"), str), f"a bare Command: {item}"
            actions.append(converter.structure(item, types.CodeAction))
        return actions

    def progress_messages(self) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for reports in self.client.progress_reports.values():
            for report in reports:
                # pytest-lsp declares ProgressParams but stores the structured `value`.
                value: object = report
                assert isinstance(value, WORK_DONE_PROGRESS), f"not a progress value: {value!r}"
                out.append((value.kind, value.message))
        return out


def types_uri_to_path(doc_uri: str) -> str:
    from pygls.uris import to_fs_path

    path = to_fs_path(doc_uri)
    assert path is not None
    return path
