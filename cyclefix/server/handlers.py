"""The LSP methods and commands the server answers, wired to CyclefixServer."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import from_fs_path

from cyclefix import __version__
from cyclefix.server.logs import ClientLogHandler
from cyclefix.server.server import (
    CMD_APPLY_FIX,
    CMD_CANCEL,
    CMD_REFINE,
    CMD_RUN_TESTS,
    CMD_SHOW_DIFF,
    BadUri,
    CyclefixServer,
    LspJob,
    RequestFailed,
    path_of,
)

logger = logging.getLogger(__name__)


def _command_target(args: tuple[Any, ...]) -> tuple[str | None, Path | None]:
    """(fix id, file path) from a command's arguments.

    Accepted: nothing, a fix id ("fix-3"), a file URI or absolute path, or an object with
    "fixId", "uri" or "textDocument": {"uri"}.
    """
    if not args or args[0] is None:
        return None, None
    arg = args[0]
    if isinstance(arg, dict):
        fix_id = arg.get("fixId")
        uri = arg.get("uri")
        document = arg.get("textDocument")
        if uri is None and isinstance(document, dict):
            uri = document.get("uri")
        if fix_id is not None and not isinstance(fix_id, str):
            raise JsonRpcInvalidParams("fixId must be a string")
        if uri is not None and not isinstance(uri, str):
            raise JsonRpcInvalidParams("uri must be a string")
        return fix_id, _file_of(uri) if uri else None
    if isinstance(arg, str):
        if arg.startswith("fix-"):
            return arg, None
        return None, _file_of(arg)
    raise JsonRpcInvalidParams('expected a file URI, a fix id, or {"uri": ...} / {"fixId": ...}')


def _file_of(uri_or_path: str) -> Path:
    if uri_or_path.startswith("file:"):
        try:
            path = path_of(uri_or_path)
        except BadUri as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        if path is None:
            raise JsonRpcInvalidParams(f"not a local file: {uri_or_path}")
        return path
    if "://" in uri_or_path or not Path(uri_or_path).is_absolute():
        raise JsonRpcInvalidParams(f"expected a file URI or an absolute path: {uri_or_path}")
    return Path(uri_or_path).resolve()


def _root_for_command(ls: CyclefixServer, path: Path | None) -> Path:
    if path is None:
        root_path = ls.workspace.root_path
        if not root_path:
            raise RequestFailed("no workspace folder is open; pass a file URI")
        path = Path(root_path).resolve()
    root = ls.project_root(path)
    if root is None:
        raise RequestFailed(f"{path} is not inside a Python project")
    return root


async def _await_job(ls: CyclefixServer, job: LspJob, future: asyncio.Future[Any] | None) -> Any:
    """Wait for a job's result; a cancelled request ($/cancelRequest) cancels the job."""
    if future is None:
        return None
    # The id of the executeCommand request this coroutine answers (pygls keeps it in context).
    request_id = ls.protocol.msg_id
    if request_id is not None:
        ls.request_jobs[request_id] = job
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        ls.cancel_job(job, "request cancelled by the client")
        raise
    finally:
        if request_id is not None and ls.request_jobs.get(request_id) is job:
            del ls.request_jobs[request_id]


def create_server() -> CyclefixServer:
    server = CyclefixServer()

    @server.feature(types.INITIALIZE)
    def initialize(params: types.InitializeParams) -> None:
        cyclefix_logger = logging.getLogger("cyclefix")
        if not any(isinstance(h, ClientLogHandler) for h in cyclefix_logger.handlers):
            cyclefix_logger.addHandler(ClientLogHandler(server, server.loop))
        server.update_settings(params.initialization_options, "initializationOptions", initial=True)

    @server.feature(types.INITIALIZED)
    def initialized(params: types.InitializedParams) -> None:
        server.log(f"cyclefix {__version__} ready (model {server.settings_for(None).model})")

    @server.feature(types.SHUTDOWN)
    def shutdown(params: None) -> None:
        server.cancel_all("server shutting down")
        server.remove_diff_dir()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        path = server.document_path(params.text_document.uri)
        if path is not None:
            server.uris[path] = params.text_document.uri

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        path = server.document_path(params.text_document.uri)
        if path is None:
            return
        for state in server.projects.values():
            if state.fix is not None and path in state.fix.paths:
                # The fix was computed for the text before this change: never offer it now.
                state.fix = None
                server.publish(state)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(params: types.DidSaveTextDocumentParams) -> None:
        path = server.document_path(params.text_document.uri)
        if path is None or path.suffix != ".py":
            return
        server.uris.setdefault(path, params.text_document.uri)
        root = server.project_root(path)
        if root is None:
            server.log(f"{path.name} is outside any Python project: not tested")
            return
        settings = server.settings_for(root)
        server.schedule(root, [path], debounce=settings.debounce, refine="auto")

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(params: types.DidChangeConfigurationParams) -> None:
        settings = params.settings
        if not settings and get_capability(
            server.client_capabilities, "workspace.configuration", False
        ):
            # Pull-style clients send an empty notification and answer workspace/configuration.
            values = await server.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section="cyclefix")])
            )
            settings = values[0] if values else None
        server.update_settings(settings, "workspace settings", initial=False)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.QuickFix], resolve_provider=True
        ),
    )
    async def code_action(params: types.CodeActionParams) -> list[types.CodeAction] | None:
        return await server.code_actions(params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(action: types.CodeAction) -> types.CodeAction:
        return await server.resolve_code_action(action)

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(params: types.WorkDoneProgressCancelParams) -> None:
        job = server.job_for_token(params.token)
        if job is not None:
            server.cancel_job(job, "cancelled by the user")

    @server.command(CMD_RUN_TESTS)
    async def run_tests(ls: CyclefixServer, *args: Any) -> dict[str, Any]:
        _, path = _command_target(args)
        root = _root_for_command(ls, path)
        paths = [path] if path is not None and path.is_file() else []
        job = ls.schedule(root, paths, debounce=0.0, refine="auto")
        run = await _await_job(ls, job, job.tests_done)
        state = ls.state(root)
        if run is None:
            return {"root": str(root), "ran": False, "syntaxErrors": len(state.syntax_problems)}
        return {
            "root": str(root),
            "ran": True,
            "passed": len(run.passed),
            "failed": len(run.failures),
            "collectionErrors": len(run.collection_errors),
            "failing": [case.nodeid for case in run.failures],
        }

    @server.command(CMD_REFINE)
    async def refine(ls: CyclefixServer, *args: Any) -> dict[str, Any]:
        fix_id, path = _command_target(args)
        if path is None and fix_id is not None:
            verified = ls.find_fix(fix_id)
            path = verified.result.root if verified is not None else None
        root = _root_for_command(ls, path)
        state = ls.state(root)
        paths = [path] if path is not None and path.is_file() else []
        job = ls.schedule(root, paths, debounce=0.0, refine="always", seed=state.refinements)
        run = await _await_job(ls, job, job.tests_done)
        result = await _await_job(ls, job, job.finished)
        if result is not None:
            status = result.status
        elif run is not None and not run.failures:
            status = "already_passing"
        else:
            status = "not_run"
        return {
            "status": status,
            "fixId": state.fix.fix_id if status == "fixed" and state.fix is not None else None,
        }

    @server.command(CMD_CANCEL)
    def cancel(ls: CyclefixServer, *args: Any) -> dict[str, Any]:
        _, path = _command_target(args)
        if path is None:
            return {"cancelled": ls.cancel_all("cancelled by the user")}
        root = ls.project_root(path)
        job = ls.jobs.get(root) if root is not None else None
        if job is None:
            return {"cancelled": 0}
        ls.cancel_job(job, "cancelled by the user")
        return {"cancelled": 1}

    @server.command(CMD_APPLY_FIX)
    async def apply_fix(ls: CyclefixServer, *args: Any) -> dict[str, Any]:
        # The user's files change through the editor, so undo and dirty state work; with
        # gitOnApply the server also writes, then commits or stages them (fix_actions.py).
        fix_id, path = _command_target(args)
        return await ls.apply_fix(fix_id, path)

    @server.command(CMD_SHOW_DIFF)
    async def show_diff(ls: CyclefixServer, *args: Any) -> dict[str, Any]:
        fix_id, path = _command_target(args)
        verified = ls.fresh_fix(fix_id, path)
        diff_path = ls.write_diff(verified)
        shown = False
        if get_capability(ls.client_capabilities, "window.show_document.support", False):
            response = await ls.window_show_document_async(
                types.ShowDocumentParams(
                    uri=from_fs_path(str(diff_path)) or diff_path.as_uri(), take_focus=True
                )
            )
            shown = bool(response.success)
        if not shown:
            ls.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Info,
                    message=f"cyclefix verified fix {verified.fix_id}:\n{verified.result.diff}",
                )
            )
        return {"path": str(diff_path), "shownAsDocument": shown}

    return server


__all__ = ["create_server"]
