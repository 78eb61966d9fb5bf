"""The language server's core: its state, the client-facing helpers, diagnostics, and jobs.

Everything that talks to the client runs on the event loop; test runs, model loading and
refinement run in worker threads and report back through `call_soon_threadsafe`. The
features build on this class, one module each: fix actions (fix_actions.py), refinement
(refinement.py), tests on save (on_save.py); server.py puts them together.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import FeatureNotificationError, JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument

from cyclefix import __version__
from cyclefix.config import Settings, parse_overrides
from cyclefix.errors import CyclefixError
from cyclefix.refine import (
    CONFIG_FILES,
    FixResult,
    TestRunResult,
    WarmWorkers,
    feedback_text,
    find_project_root,
)
from cyclefix.server.diagnostics import FixNotice, build_diagnostics
from cyclefix.server.progress import JobProgress
from cyclefix.server.state import ProjectState
from cyclefix.server.trust import WorkspaceTrust
from cyclefix.session.fixes import read_disk
from cyclefix.session.jobs import Job, JobBoard
from cyclefix.session.models import ModelHolder
from cyclefix.session.settings import session_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

# LSP's RequestFailed: the request was valid but could not be carried out.
REQUEST_FAILED = -32803

RefineMode = Literal["auto", "always"]
# Files that make a folder a project, as pytest's rootdir search sees them.


class RequestFailed(JsonRpcException):
    CODE = REQUEST_FAILED
    MESSAGE = "Request failed"


@dataclass(eq=False)
class LspJob(Job):
    """One project's pending or running work: debounce -> test run -> refinement."""

    # Files saved or targeted; empty: the whole project.
    paths: frozenset[Path] = frozenset()
    debounce: float = 0.0
    refine: RefineMode = "auto"
    task: asyncio.Task[None] | None = None
    progress: JobProgress | None = None
    tests_done: asyncio.Future[TestRunResult | None] | None = None
    finished: asyncio.Future[FixResult | None] | None = None
    seed: int | None = 0

    @property
    def root(self) -> Path:
        return cast(Path, self.key)


class _Unstructurable:
    """Stands in for a message pygls could not parse, so the read loop skips it."""

    jsonrpc = "invalid"


class CyclefixProtocol(LanguageServerProtocol):
    """Answers a malformed request with InvalidParams instead of leaving it unanswered."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            if "method" in data and "params" not in data and "jsonrpc" in data:
                # "params" may be omitted; pygls' fallback message types require it.
                with contextlib.suppress(JsonRpcException):
                    return super().structure_message({**data, "params": None})
            return super().structure_message(data)
        except JsonRpcException as exc:
            if "id" in data and "method" in data:
                logger.warning("malformed %r request: %s", data.get("method"), exc)
                self._send_response(
                    data["id"],
                    error=JsonRpcInvalidParams(
                        f"Invalid params for {data.get('method')!r}"
                    ).to_response_error(),
                )
            else:
                logger.warning("ignoring malformed message %r", data.get("method"))
            return _Unstructurable()

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        # pygls cancels only its own future; the job a command started must stop too.
        server = self._server
        if isinstance(server, ServerCore):
            server.cancel_request(msg_id)
        super()._handle_cancel_notification(msg_id)


class BadUri(CyclefixError):
    """A file: URI that names no usable path (a NUL byte, a symlink loop)."""


def path_of(uri: str) -> Path | None:
    """The local file a URI names; None for other schemes; BadUri when it names no path."""
    if not uri.startswith("file:"):
        return None
    fs_path = to_fs_path(uri)
    if not fs_path:
        return None
    try:
        return Path(fs_path).resolve()
    except (ValueError, OSError, RuntimeError) as exc:
        raise BadUri(f"ignoring {uri!r}: not a usable file path ({exc})") from None


def private_diff_dir() -> Path:
    """A new folder only this user can enter, for diffs the editor opens.

    Under $XDG_RUNTIME_DIR when it is set (a per-user folder), else the temp folder; mkdtemp
    gives a fresh name with mode 0700, so another user can neither read the diffs nor put a
    symlink where one will be written.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = runtime if runtime and os.path.isdir(runtime) else None
    return Path(tempfile.mkdtemp(prefix="cyclefix-fixes-", dir=base))


class ServerCore(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "cyclefix",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=CyclefixProtocol,
        )
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cyclefix")
        self.models = ModelHolder()
        # pytest and its plugins kept started across saves: each run is a fork (runner.warm).
        self.warm = WarmWorkers()
        self.projects: dict[Path, ProjectState] = {}
        # One job per project root: a newer save supersedes (cancels) the one in flight.
        self.board: JobBoard[LspJob] = JobBoard(on_cancel=_end_cancelled)
        self.init_settings: dict[str, Any] = {}
        self.client_settings: dict[str, Any] = {}
        self._warned: set[str] = set()
        self._model_warned: set[str] = set()
        self.uris: dict[Path, str] = {}
        # Jobs that a pending request (a command) waits on, by request id, for $/cancelRequest.
        self.request_jobs: dict[Any, LspJob] = {}
        # The job whose refinement holds (or waits for) the model: a newer one cancels it.
        self._refining: LspJob | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Made on first use: private to this user and this server (see private_diff_dir).
        self.diff_dir: Path | None = None
        # A project's model or python waits for the user's Trust (window/showMessageRequest).
        self.trust = WorkspaceTrust(
            self.window_show_message_request_async, lambda message: self.warn(message), self.log
        )

    @property
    def jobs(self) -> dict[Any, LspJob]:
        """The job in flight of each project root."""
        return self.board.jobs

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log protocol-level errors; show the user only failures of the server's own handlers."""
        logger.error("server error (%s): %s", getattr(source, "__name__", source), error)
        if source is FeatureNotificationError:
            self.warn(f"internal error: {error}; see the log", once=True)

    # ----------------------------------------------------------------- helpers

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def encoding(self) -> str:
        try:
            encoding = self.workspace.position_encoding
        except RuntimeError:
            encoding = None
        if isinstance(encoding, enum.Enum):
            return str(encoding.value)
        return str(encoding or types.PositionEncodingKind.Utf16.value)

    def warn(self, message: str, *, once: bool = True) -> None:
        """A window/showMessage warning (once per distinct text by default)."""
        logger.warning(message)
        if once and message in self._warned:
            return
        self._warned.add(message)
        self.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Warning, message=f"cyclefix: {message}")
        )

    def log(self, message: str, level: types.MessageType = types.MessageType.Info) -> None:
        logger.log(logging.WARNING if level <= types.MessageType.Warning else logging.INFO, message)
        self.window_log_message(types.LogMessageParams(type=level, message=message))

    def document(self, path: Path) -> TextDocument | None:
        """The open document for `path`, if the editor has it open."""
        uri = self.uris.get(path)
        if uri is None:
            return None
        try:
            docs = self.workspace.text_documents
        except RuntimeError:
            return None
        doc = docs.get(unquote(uri))
        return doc if isinstance(doc, TextDocument) else None

    def uri_for(self, path: Path) -> str:
        return self.uris.get(path) or from_fs_path(str(path)) or path.as_uri()

    def text_of(self, path: Path) -> str | None:
        """The editor's text for `path` when open, else the file on disk."""
        doc = self.document(path)
        return doc.source if doc is not None else read_disk(path)

    def version_of(self, path: Path) -> int | None:
        """The editor's version of `path`; None when it is not open."""
        doc = self.document(path)
        return doc.version if doc is not None else None

    def project_root(self, path: Path) -> Path | None:
        """The project `path` belongs to; None for a file outside any project.

        A folder counts as a project when it has a pytest config file or conftest.py, or
        lies inside one of the editor's workspace folders; a loose file elsewhere does not.
        """
        try:
            root = find_project_root(path).resolve()
        except (CyclefixError, OSError) as exc:
            logger.info("cannot find the project of %s: %s", path, exc)
            return None
        markers = (*CONFIG_FILES, "conftest.py")
        if any((root / name).is_file() for name in markers):
            return root
        if any(root == folder or folder in root.parents for folder in self.workspace_folders()):
            return root
        logger.info("%s is outside any project", path)
        return None

    def workspace_folders(self) -> list[Path]:
        try:
            workspace = self.workspace
        except RuntimeError:
            return []
        uris = [folder.uri for folder in workspace.folders.values()]
        if workspace.root_uri:
            uris.append(workspace.root_uri)
        paths: list[Path] = []
        for folder_uri in uris:
            with contextlib.suppress(BadUri):  # a folder with no usable path holds no project
                if (path := path_of(folder_uri)) is not None:
                    paths.append(path)
        return paths

    def state(self, root: Path) -> ProjectState:
        if root not in self.projects:
            self.projects[root] = ProjectState(root=root)
        return self.projects[root]

    def settings_for(self, root: Path | None) -> Settings:
        """The session's settings (cyclefix.session.settings): the editor's settings over the
        project's trusted `[tool.cyclefix]` over the user's config file."""
        editor = {**self.init_settings, **self.client_settings}
        resolved = session_settings(root, editor=editor, trust_store=self.trust.store)
        for warning in resolved.warnings:
            self.warn(warning)
        for request in resolved.untrusted:
            self.trust.ask(request)
        return resolved.settings

    def update_settings(self, raw: object, source: str, *, initial: bool) -> None:
        values, warnings = parse_overrides(raw, source)
        for warning in warnings:
            self.warn(warning, once=False)
        if initial:
            self.init_settings = values
        else:
            self.client_settings = values
        logger.info("settings from %s: %s", source, values)

    async def in_thread(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.loop.run_in_executor(
            self.executor, functools.partial(func, *args, **kwargs)
        )

    def threadsafe(self, callback: Callable[[T], None]) -> Callable[[T], None]:
        """Wrap `callback` so a worker thread can call it: it runs on the event loop."""
        loop = self.loop

        def post(value: T) -> None:
            with contextlib.suppress(RuntimeError):  # loop already closed: server exiting
                loop.call_soon_threadsafe(callback, value)

        return post

    def document_path(self, uri: str) -> Path | None:
        """The local file of a document URI; a warning (not an error) when it names none."""
        try:
            return path_of(uri)
        except BadUri as exc:
            self.warn(str(exc))
            return None

    # ------------------------------------------------------------ diagnostics

    def publish(self, state: ProjectState) -> None:
        """Publish the project's diagnostics; clear files that no longer have any."""
        fix_notice = None
        if state.fix is not None:
            fix_notice = FixNotice(
                fix_id=state.fix.fix_id, passed=state.fix.passed, locations=state.fix.locations
            )
        by_path = build_diagnostics(
            state.root,
            failures=list(state.failures.values()),
            collection_errors=list(state.collection_errors.values()),
            syntax_problems=list(state.syntax_problems.values()),
            fix=fix_notice,
            read_text=self.text_of,
            to_uri=self.uri_for,
            describe=feedback_text,
            encoding=self.encoding,
        )
        for path in state.published - set(by_path):
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=self.uri_for(path), diagnostics=[])
            )
        for path, diagnostics in by_path.items():
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=self.uri_for(path), diagnostics=diagnostics)
            )
        state.published = set(by_path)

    # ------------------------------------------------------------------- jobs

    def cancel_job(self, job: LspJob, reason: str) -> None:
        self.board.cancel(job, reason)

    def cancel_request(self, msg_id: Any) -> None:
        job = self.request_jobs.pop(msg_id, None)
        if job is not None:
            self.cancel_job(job, "request cancelled by the client")

    def cancel_all(self, reason: str) -> int:
        return self.board.cancel_all(reason)

    def job_for_token(self, token: types.ProgressToken) -> LspJob | None:
        for job in self.board.running():
            if job.progress is not None and job.progress.token == token:
                return job
        return None

    def stop_work(self) -> None:
        """After the event loop has stopped: stop every worker and free the model."""
        for job in self.board.running():
            job.cancel.set()
        if self._refining is not None:
            self._refining.cancel.set()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.warm.close()
        # A generation still running stops at its next token; close the model after it.
        self.models.close_when_free(timeout=10)


def _end_cancelled(job: LspJob, reason: str) -> None:
    """A cancelled job's task stops and its progress report ends, saying why."""
    if job.task is not None and not job.task.done():
        job.task.cancel()
    if job.progress is not None:
        job.progress.end(f"cancelled: {reason}")
