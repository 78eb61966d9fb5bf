"""The cyclefix language server: tests on save, diagnostics, and verified fixes as code actions.

Everything that talks to the client runs on the event loop; test runs, model loading and
refinement run in worker threads and report back through `call_soon_threadsafe`. Each
project has at most one job (debounce -> test run -> refinement); a newer save cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import io
import logging
import os
import shutil
import tempfile
import threading
import tokenize
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.exceptions import FeatureNotificationError, JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument

from cyclefix import __version__
from cyclefix.errors import CyclefixError
from cyclefix.refine import (
    AttemptFinished,
    FixResult,
    RefineEvent,
    RoundStarted,
    Target,
    TestRunResult,
    TestsFinished,
    TestsStarted,
    check,
    feedback_text,
    find_project_root,
    fix,
    suspects,
)
from cyclefix.server import settings as settings_mod
from cyclefix.server.diagnostics import (
    CODE_FIX,
    SOURCE,
    FixNotice,
    build_diagnostics,
    def_line,
    syntax_problem,
)
from cyclefix.server.edits import minimal_edits
from cyclefix.server.model_holder import ModelHolder, install_hint
from cyclefix.server.progress import JobProgress
from cyclefix.server.settings import Settings
from cyclefix.server.state import ProjectState, VerifiedFix, new_fix_id
from cyclefix.server.trust import WorkspaceTrust

logger = logging.getLogger(__name__)

T = TypeVar("T")

CMD_RUN_TESTS = "cyclefix.runTests"
CMD_REFINE = "cyclefix.refine"
CMD_CANCEL = "cyclefix.cancel"
CMD_APPLY_FIX = "cyclefix.applyFix"
CMD_SHOW_DIFF = "cyclefix.showDiff"

TITLE_APPLY = "Apply verified fix"
TITLE_DIFF = "Show fix as diff"
TITLE_REFINE_AGAIN = "Refine again"
TITLE_REFINE = "Refine with cyclefix"

# LSP's RequestFailed: the request was valid but could not be carried out.
REQUEST_FAILED = -32803

RefineMode = Literal["auto", "always"]
# Files that make a folder a project, as pytest's rootdir search sees them.
PROJECT_MARKERS = ("pyproject.toml", "pytest.ini", "setup.cfg", "tox.ini")


class RequestFailed(JsonRpcException):
    CODE = REQUEST_FAILED
    MESSAGE = "Request failed"


@dataclass(eq=False)
class Job:
    """One project's pending or running work."""

    root: Path
    # Files saved or targeted; empty: the whole project.
    paths: frozenset[Path]
    debounce: float
    refine: RefineMode
    cancel: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task[None] | None = None
    progress: JobProgress | None = None
    tests_done: asyncio.Future[TestRunResult | None] | None = None
    finished: asyncio.Future[FixResult | None] | None = None
    seed: int | None = 0


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
        if isinstance(server, CyclefixServer):
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


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_disk(path: Path) -> str | None:
    """A Python file's text as Python reads it (PEP 263 coding line, BOM), endings kept."""
    try:
        data = path.read_bytes()
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (OSError, SyntaxError, UnicodeDecodeError, LookupError):
        return None


class CyclefixServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "cyclefix",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=CyclefixProtocol,
        )
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cyclefix")
        self.models = ModelHolder()
        self.projects: dict[Path, ProjectState] = {}
        self.jobs: dict[Path, Job] = {}
        self.pending: dict[Path, set[Path]] = {}
        self.init_settings: dict[str, Any] = {}
        self.client_settings: dict[str, Any] = {}
        self._pyproject_cache: dict[Path, tuple[float, dict[str, Any], list[str]]] = {}
        self._warned: set[str] = set()
        self._model_warned: set[str] = set()
        self.uris: dict[Path, str] = {}
        # Jobs that a pending request (a command) waits on, by request id, for $/cancelRequest.
        self.request_jobs: dict[Any, Job] = {}
        # The job whose refinement holds (or waits for) the model: a newer one cancels it.
        self._refining: Job | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Made on first use: private to this user and this server (see private_diff_dir).
        self.diff_dir: Path | None = None
        # A project's model or python waits for the user's Trust (window/showMessageRequest).
        self.trust = WorkspaceTrust(
            self.window_show_message_request_async, lambda message: self.warn(message), self.log
        )

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
        return doc.source if doc is not None else _read_disk(path)

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
        markers = (*PROJECT_MARKERS, "conftest.py")
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
        # The user's config file is the lowest layer, as for `cyclefix fix` (cyclefix.config).
        layers: list[dict[str, Any]] = [settings_mod.read_user_config()[0]]
        if root is not None:
            user = {**self.init_settings, **self.client_settings}
            layers.append(self.trust.filter(root, self._pyproject_settings(root), user))
        layers += [self.init_settings, self.client_settings]
        return settings_mod.merge(*layers)

    def _pyproject_settings(self, root: Path) -> dict[str, Any]:
        path = root / "pyproject.toml"
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = -1.0
        cached = self._pyproject_cache.get(root)
        if cached is None or cached[0] != mtime:
            values, warnings = settings_mod.read_pyproject(root)
            cached = (mtime, values, warnings)
            self._pyproject_cache[root] = cached
            for warning in warnings:
                self.warn(warning)
        return cached[1]

    def update_settings(self, raw: object, source: str, *, initial: bool) -> None:
        values, warnings = settings_mod.parse_overrides(raw, source)
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

    def schedule(
        self,
        root: Path,
        paths: Iterable[Path],
        *,
        debounce: float,
        refine: RefineMode,
        seed: int | None = 0,
    ) -> Job:
        """Start a job for `root`, cancelling the one in flight (latest save wins)."""
        pending = self.pending.setdefault(root, set())
        pending.update(paths)
        old = self.jobs.get(root)
        if old is not None:
            if old.refine == "always" and refine == "auto":
                refine = "always"  # a save during an explicit refine keeps it explicit
            pending.update(old.paths)
            self.cancel_job(old, "superseded by a newer save")
        job = Job(root=root, paths=frozenset(), debounce=debounce, refine=refine, seed=seed)
        job.tests_done = self.loop.create_future()
        job.finished = self.loop.create_future()
        self.jobs[root] = job
        job.task = self.loop.create_task(self._run_job(job))
        return job

    def cancel_job(self, job: Job, reason: str) -> None:
        logger.info("cancelling job for %s: %s", job.root, reason)
        job.cancel.set()
        if job.task is not None and not job.task.done():
            job.task.cancel()
        if job.progress is not None:
            job.progress.end(f"cancelled: {reason}")
        if self.jobs.get(job.root) is job:
            del self.jobs[job.root]

    def cancel_request(self, msg_id: Any) -> None:
        job = self.request_jobs.pop(msg_id, None)
        if job is not None:
            self.cancel_job(job, "request cancelled by the client")

    def cancel_all(self, reason: str) -> int:
        jobs = list(self.jobs.values())
        for job in jobs:
            self.cancel_job(job, reason)
        return len(jobs)

    def stop_work(self) -> None:
        """After the event loop has stopped: stop every worker and free the model."""
        for job in list(self.jobs.values()):
            job.cancel.set()
        if self._refining is not None:
            self._refining.cancel.set()
        self.executor.shutdown(wait=False, cancel_futures=True)
        # A generation still running stops at its next token; close the model after it.
        if self.models.lock.acquire(timeout=10):
            try:
                self.models.close()
            finally:
                self.models.lock.release()

    def job_for_token(self, token: types.ProgressToken) -> Job | None:
        for job in self.jobs.values():
            if job.progress is not None and job.progress.token == token:
                return job
        return None

    async def _run_job(self, job: Job) -> None:
        try:
            if job.debounce > 0:
                await asyncio.sleep(job.debounce)
            job.paths = frozenset(self.pending.pop(job.root, set()))
            await self._job_body(job)
        except asyncio.CancelledError:
            job.cancel.set()
            raise
        except CyclefixError as exc:
            self.warn(str(exc), once=False)
        except Exception:
            logger.exception("job for %s failed", job.root)
            self.warn(f"internal error while testing {job.root}; see the log", once=False)
        finally:
            if job.progress is not None:
                job.progress.end("cancelled" if job.cancel.is_set() else "done")
            for future in (job.tests_done, job.finished):
                if future is not None and not future.done():
                    future.set_result(None)
            if self.jobs.get(job.root) is job:
                del self.jobs[job.root]
            if self._refining is job:
                self._refining = None

    def _selection(self, root: Path, settings: Settings) -> list[str] | None:
        if not settings.tests:
            return None
        out = []
        for test in settings.tests:
            path, sep, rest = test.partition("::")
            absolute = Path(path) if Path(path).is_absolute() else root / path
            out.append(str(absolute) + sep + rest)
        return out

    async def _job_body(self, job: Job) -> None:
        root = job.root
        state = self.state(root)
        settings = self.settings_for(root)
        python_paths = sorted(p for p in job.paths if p.suffix == ".py")
        # A syntax error in a saved file: show it, skip the run and the refinement.
        for path in python_paths:
            state.syntax_problems.pop(path, None)
            text = _read_disk(path)
            if text is not None and (problem := syntax_problem(path, text)) is not None:
                state.syntax_problems[path] = problem
        broken = [p for p in python_paths if p in state.syntax_problems]
        if broken:
            self._drop_stale_fix(state)
            self.publish(state)
            names = ", ".join(p.name for p in broken)
            self.log(f"syntax error in {names}: tests not run")
            return
        target = python_paths[0] if len(python_paths) == 1 else root
        tests = self._selection(root, settings)
        versions = self._open_versions(root)
        job.progress = JobProgress(self)
        await job.progress.begin("cyclefix", f"running tests of {target.name or root}")
        on_event = self.threadsafe(functools.partial(self._on_event, job))
        run = await self.in_thread(
            check,
            target,
            tests,
            config=settings.refine_config(),
            previously_failing=state.failing_nodeids(),
            on_event=on_event,
            cancel=job.cancel,
        )
        if run.cancelled or job.cancel.is_set():
            return
        localized = await self.in_thread(_localize, run)
        state.record_run(run, lambda single: localized.get(single.tests[0].nodeid, ()))
        self._drop_stale_fix(state)
        if state.fix is not None and any(p not in state.fix.paths for p in job.paths):
            state.fix = None  # another file changed (a test, a helper): verified against the past
        if state.fix is not None and run.all_passed and not run.collection_errors:
            state.fix = None  # the tests pass now: nothing left to fix
        self.publish(state)
        summary = run_summary(run)
        self.log(f"{root.name}: {summary}")
        if job.tests_done is not None and not job.tests_done.done():
            job.tests_done.set_result(run)
        refine = job.refine == "always" or (job.refine == "auto" and settings.auto_refine)
        if not refine or not run.failures or run.collection_errors:
            job.progress.end(summary)
            return
        result = await self._refine(job, state, settings, target, tests, run, versions)
        if job.finished is not None and not job.finished.done():
            job.finished.set_result(result)

    def _open_versions(self, root: Path) -> dict[Path, int]:
        out: dict[Path, int] = {}
        for path in self.uris:
            doc = self.document(path) if root in path.parents else None
            if doc is not None and doc.version is not None:
                out[path] = doc.version
        return out

    def _on_event(self, job: Job, event: RefineEvent) -> None:
        if isinstance(event, AttemptFinished):
            attempt = event.attempt
            logger.info(
                "round %d attempt: %s (%d/%d tests) %s",
                attempt.round,
                attempt.verdict,
                attempt.tests_passed,
                attempt.tests_total,
                attempt.detail,
            )
        progress = job.progress
        if progress is None or job.cancel.is_set():
            return
        if isinstance(event, TestsStarted):
            if event.scratch:
                progress.report("testing a candidate fix")
            elif len(event.tests) == 1:
                progress.report(f"running {event.tests[0]}")
            else:
                progress.report(f"running {len(event.tests) or 'all'} test selections")
        elif isinstance(event, TestsFinished) and not event.scratch:
            run = event.run
            progress.report(f"{len(run.passed)}/{len(run.tests)} tests pass")
        elif isinstance(event, RoundStarted):
            names = ", ".join(f"`{name}()`" for name in event.targets) or "the code"
            job_percentage = int(100 * (event.index - 1) / max(1, event.total))
            progress.report(f"Refining {names}: round {event.index}/{event.total}", job_percentage)
        elif isinstance(event, AttemptFinished):
            attempt = event.attempt
            progress.report(
                f"round {attempt.round}: {attempt.verdict.replace('_', ' ')}"
                + (
                    f" ({attempt.tests_passed}/{attempt.tests_total} tests)"
                    if attempt.tests_total
                    else ""
                )
            )

    # ------------------------------------------------------------- refinement

    async def _refine(
        self,
        job: Job,
        state: ProjectState,
        settings: Settings,
        target: Path,
        tests: list[str] | None,
        run: TestRunResult,
        versions: dict[Path, int],
    ) -> FixResult | None:
        assert job.progress is not None
        if self._refining is not None and self._refining is not job:
            self._refining.cancel.set()  # one generation at a time: the latest save wins
        self._refining = job
        job.progress.report(f"{run_summary(run)}; loading model {settings.model}")
        on_event = self.threadsafe(functools.partial(self._on_event, job))
        state.refinements += 1
        outcome = await self.in_thread(
            self._fix_with_model,
            settings.model,
            target,
            hardware=(settings.threads, settings.gpu_layers),
            tests=tests,
            config=settings.refine_config(seed=job.seed),
            initial_run=run,
            on_event=on_event,
            cancel=job.cancel,
        )
        if outcome is None:
            return None
        if isinstance(outcome, str):  # the model could not load
            if settings.model not in self._model_warned:
                self._model_warned.add(settings.model)
                self.warn(outcome, once=False)
            job.progress.end(f"{run_summary(run)}; no model: {outcome}")
            return None
        result = outcome
        if job.cancel.is_set() or result.status == "cancelled":
            return result
        if result.status != "fixed":
            detail = result.error or f"no candidate passed in {len(result.rounds)} round(s)"
            self.log(f"no verified fix for {target.name}: {detail}")
            job.progress.end(f"no verified fix: {detail}")
            return result
        verified = VerifiedFix(
            fix_id=new_fix_id(),
            result=result,
            versions={
                p: v for p, v in versions.items() if p in {c.path.resolve() for c in result.changes}
            },
            locations=await asyncio.to_thread(_fix_locations, state, result),
        )
        if self.is_stale(verified):
            self.log("verified fix discarded: the file changed while refining")
            job.progress.end("fix discarded: the file changed meanwhile")
            return result
        state.fix = verified
        self.publish(state)
        self.log(f"verified fix {verified.fix_id}: {verified.passed} tests pass")
        job.progress.end(f"verified fix available ({verified.passed} tests pass)")
        return result

    def _fix_with_model(
        self,
        spec: str,
        target: Path,
        *,
        cancel: threading.Event,
        hardware: tuple[int | None, int | None] = (None, None),
        **kwargs: Any,
    ) -> FixResult | str | None:
        """In a worker thread: load the model if needed and refine.

        A load error comes back as its message; None when cancelled before starting.
        """
        # Wait for the model, giving up once this job is cancelled.
        while not self.models.lock.acquire(timeout=0.1):
            if cancel.is_set():
                return None
        try:
            if cancel.is_set():
                return None
            try:
                backend = self.models.get(spec, *hardware)  # (threads, gpuLayers)
            except CyclefixError as exc:
                return install_hint(spec, str(exc))
            return fix(target, backend, cancel=cancel, **kwargs)
        finally:
            self.models.lock.release()

    # ------------------------------------------------------------------ fixes

    def is_stale(self, verified: VerifiedFix) -> bool:
        """Whether any file the fix changes differs from what the fix was computed on."""
        for change in verified.result.changes:
            path = change.path.resolve()
            doc = self.document(path)
            if doc is not None:
                recorded = verified.versions.get(path)
                if recorded is not None and doc.version != recorded:
                    return True
                current: str | None = doc.source
            else:
                current = _read_disk(path)
            if current is None or _normalize_newlines(current) != _normalize_newlines(
                change.original
            ):
                return True
        return False

    def _drop_stale_fix(self, state: ProjectState) -> bool:
        if state.fix is not None and self.is_stale(state.fix):
            logger.info("dropping stale fix %s", state.fix.fix_id)
            state.fix = None
            return True
        return False

    def find_fix(self, fix_id: str | None = None, path: Path | None = None) -> VerifiedFix | None:
        for state in self.projects.values():
            verified = state.fix
            if verified is None:
                continue
            if fix_id is not None and verified.fix_id == fix_id:
                return verified
            if (
                fix_id is None
                and path is not None
                and (path == state.root or state.root in path.parents)
            ):
                return verified
        return None

    async def workspace_edit(self, verified: VerifiedFix) -> types.WorkspaceEdit:
        """The fix as minimal edits against the editor's text (or the file on disk).

        The diffing runs in a thread: on a long file it takes seconds the server must not block.
        """
        use_document_changes = bool(
            get_capability(
                self.client_capabilities, "workspace.workspace_edit.document_changes", False
            )
        )
        document_changes: list[types.TextDocumentEdit] = []
        changes: dict[str, list[types.TextEdit]] = {}
        for change in verified.result.changes:
            path = change.path.resolve()
            doc = self.document(path)
            current = doc.source if doc is not None else _read_disk(path)
            if current is None:
                raise RequestFailed(f"cannot read {path}")
            edits = await asyncio.to_thread(minimal_edits, current, change.fixed, self.encoding)
            uri = self.uri_for(path)
            if use_document_changes:
                document_changes.append(
                    types.TextDocumentEdit(
                        text_document=types.OptionalVersionedTextDocumentIdentifier(
                            uri=uri, version=doc.version if doc is not None else None
                        ),
                        edits=list(edits),
                    )
                )
            else:
                changes[uri] = edits
        if use_document_changes:
            return types.WorkspaceEdit(document_changes=list(document_changes))
        return types.WorkspaceEdit(changes=changes)

    def fresh_fix(self, fix_id: str | None, path: Path | None) -> VerifiedFix:
        """The fix asked for, or a RequestFailed saying why there is none to use."""
        verified = self.find_fix(fix_id, path)
        if verified is None:
            raise RequestFailed("no verified fix is available; save to run the tests")
        if self.is_stale(verified):
            state = self.projects.get(verified.result.root.resolve())
            if state is not None and state.fix is verified:
                state.fix = None
                self.publish(state)
            raise RequestFailed(
                "the verified fix is stale: the file changed since it was computed; "
                "save to test and refine again"
            )
        return verified

    def write_diff(self, verified: VerifiedFix) -> Path:
        try:
            if self.diff_dir is None:
                self.diff_dir = private_diff_dir()
            path = self.diff_dir / f"{verified.fix_id}-{verified.result.root.name}.diff"
            path.write_text(verified.result.diff, encoding="utf-8")
        except OSError as exc:
            raise RequestFailed(f"cannot write the diff: {exc}") from None
        return path

    def remove_diff_dir(self) -> None:
        if self.diff_dir is not None:
            shutil.rmtree(self.diff_dir, ignore_errors=True)
            self.diff_dir = None

    def document_path(self, uri: str) -> Path | None:
        """The local file of a document URI; a warning (not an error) when it names none."""
        try:
            return path_of(uri)
        except BadUri as exc:
            self.warn(str(exc))
            return None

    # ------------------------------------------------------------ code actions

    async def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        path = self.document_path(params.text_document.uri)
        if path is None or path.suffix != ".py":
            return None
        only = params.context.only
        if only and not any(
            types.CodeActionKind.QuickFix.value.startswith(str(kind)) for kind in only
        ):
            return None
        root = next((r for r in self.projects if r in path.parents), None)
        if root is None:
            return None
        state = self.projects[root]
        uri = params.text_document.uri
        actions: list[types.CodeAction] = []
        verified = state.fix
        if verified is not None and self.is_stale(verified):
            state.fix = verified = None
            self.publish(state)
        running = root in self.jobs
        if verified is not None and self._relevant(state, path, verified):
            fix_diagnostics = [
                d for d in params.context.diagnostics if d.source == SOURCE and d.code == CODE_FIX
            ]
            apply = types.CodeAction(
                title=TITLE_APPLY,
                kind=types.CodeActionKind.QuickFix,
                diagnostics=fix_diagnostics or None,
                is_preferred=True,
                data={"fixId": verified.fix_id, "uri": uri},
            )
            if not self._client_resolves_edits():
                apply.edit = await self.workspace_edit(verified)
            actions.append(apply)
            actions.append(
                types.CodeAction(
                    title=TITLE_DIFF,
                    kind=types.CodeActionKind.QuickFix,
                    command=types.Command(
                        title=TITLE_DIFF, command=CMD_SHOW_DIFF, arguments=[verified.fix_id]
                    ),
                )
            )
            if not running:
                actions.append(self._refine_action(TITLE_REFINE_AGAIN, uri))
        elif state.failures and not running and self._relevant(state, path, None):
            actions.append(self._refine_action(TITLE_REFINE, uri))
        return actions

    def _refine_action(self, title: str, uri: str) -> types.CodeAction:
        return types.CodeAction(
            title=title,
            kind=types.CodeActionKind.QuickFix,
            command=types.Command(title=title, command=CMD_REFINE, arguments=[uri]),
        )

    def _relevant(self, state: ProjectState, path: Path, verified: VerifiedFix | None) -> bool:
        """Whether `path` is a file the fix changes or that shows one of the failures."""
        if verified is not None and path in verified.paths:
            return True
        for failure in state.failures.values():
            test_file = failure.case.path or failure.case.nodeid.split("::", 1)[0]
            if state.root / test_file == path:
                return True
            if any(state.root / t.path == path for t in failure.suspects):
                return True
        return False

    def _client_resolves_edits(self) -> bool:
        properties = get_capability(
            self.client_capabilities, "text_document.code_action.resolve_support.properties", []
        )
        return "edit" in (properties or [])

    async def resolve_code_action(self, action: types.CodeAction) -> types.CodeAction:
        data = action.data if isinstance(action.data, dict) else {}
        fix_id = data.get("fixId")
        if action.edit is not None or not isinstance(fix_id, str):
            return action
        verified = self.fresh_fix(fix_id, None)
        action.edit = await self.workspace_edit(verified)
        return action


def _localize(run: TestRunResult) -> dict[str, tuple[Target, ...]]:
    """In a worker thread: the suspects of each failing test (capped; see state.py)."""
    from cyclefix.server.state import MAX_LOCALIZED_FAILURES

    out: dict[str, tuple[Target, ...]] = {}
    for case in run.failures[:MAX_LOCALIZED_FAILURES]:
        try:
            # The run's passing tests still count: what they executed clears the code they share.
            out[case.nodeid] = suspects(run, (case,))
        except (CyclefixError, OSError, SyntaxError, ValueError) as exc:
            logger.info("cannot localize %s: %s", case.nodeid, exc)
            out[case.nodeid] = ()
    return out


def _fix_locations(state: ProjectState, result: FixResult) -> tuple[tuple[Path, int], ...]:
    """The def line of each function the fix rewrites; the first changed line as fallback."""
    changed = {change.path.resolve() for change in result.changes}
    seen: set[tuple[Path, int]] = set()
    locations: list[tuple[Path, int]] = []
    for failure in state.failures.values():
        for target in failure.suspects:
            path = (state.root / target.path).resolve()
            if path in changed and (path, def_line(target)) not in seen:
                seen.add((path, def_line(target)))
                locations.append((path, def_line(target)))
    covered = {path for path, _ in locations}
    for change in result.changes:
        path = change.path.resolve()
        if path in covered:
            continue
        edits = minimal_edits(change.original, change.fixed)
        line = edits[0].range.start.line + 1 if edits else 1
        locations.append((path, line))
    return tuple(locations)


def run_summary(run: TestRunResult) -> str:
    """One line for the log and the progress end; the run's notes (tests not run after hangs,
    the interpreter used) are part of it, or the editor would not know tests were skipped."""
    counts = _counts(run)
    return "; ".join((counts, *run.notes))


def _counts(run: TestRunResult) -> str:
    if run.collection_errors:
        return f"{len(run.collection_errors)} file(s) could not be collected"
    if run.timed_out:
        return f"the test run timed out after {run.duration:.0f}s"
    failed = len(run.failures)
    if not run.tests:
        return "no tests ran"
    if failed == 0:
        return f"{len(run.tests)}/{len(run.tests)} tests pass"
    return f"{len(run.passed)}/{len(run.tests)} tests pass, {failed} failing"
