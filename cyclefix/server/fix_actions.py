"""Verified fixes as the editor uses them: code actions, workspace edits, diffs, applying.

A fix reaches the user's files through the editor (a workspace edit), so undo and the dirty
state work; with the gitOnApply setting the server writes it first and commits or stages it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.capabilities import get_capability

from cyclefix.errors import CyclefixError
from cyclefix.refine import FixResult, apply_and_keep
from cyclefix.server.commands import CMD_APPLY_FIX, CMD_REFINE, CMD_SHOW_DIFF
from cyclefix.server.core import (
    RequestFailed,
    ServerCore,
    private_diff_dir,
)
from cyclefix.server.diagnostics import CODE_FIX, SOURCE, def_line
from cyclefix.server.edits import minimal_edits
from cyclefix.server.state import ProjectState
from cyclefix.session.fixes import VerifiedFix

logger = logging.getLogger(__name__)

TITLE_APPLY = "Apply verified fix"
TITLE_DIFF = "Show fix as diff"
TITLE_REFINE_AGAIN = "Refine again"
TITLE_REFINE = "Refine with cyclefix"


class FixActions(ServerCore):
    def is_stale(self, verified: VerifiedFix) -> bool:
        """Whether any file the fix changes differs from what the fix was computed on."""
        return verified.is_stale(self.text_of, self.version_of)

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
            current = self.text_of(path)
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

    async def apply_fix(self, fix_id: str | None, path: Path | None) -> dict[str, Any]:
        """Apply a fresh verified fix through the editor, and keep it in git as the
        gitOnApply setting says ("commit", "stage" or "none")."""
        verified = self.fresh_fix(fix_id, path)
        mode = self.settings_for(verified.result.root.resolve()).git_on_apply
        git = ""
        if mode != "none":
            # git takes files from disk: the fix is written (and committed or staged) first,
            # refused before writing when a file is untracked or has uncommitted changes; the
            # edit below then gives the editor's open buffers the same text.
            try:
                kept = await asyncio.to_thread(apply_and_keep, verified.result, mode)
            except CyclefixError as exc:
                raise RequestFailed(f"fix not applied: {exc}") from None
            git = kept.git
            self.log(f"verified fix {verified.fix_id} written; {git}")
        edit = await self.workspace_edit(verified)
        result = await self.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=edit, label="cyclefix: apply verified fix")
        )
        return {
            "applied": bool(result.applied) or bool(git),
            "fixId": verified.fix_id,
            "failureReason": result.failure_reason,
            "git": git,
        }

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
            if self.settings_for(root).git_on_apply != "none":
                # Kept in git: the server writes and commits, so the action runs the command.
                apply.data = None
                apply.command = types.Command(
                    title=TITLE_APPLY, command=CMD_APPLY_FIX, arguments=[verified.fix_id]
                )
            elif not self._client_resolves_edits():
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


def fix_locations(result: FixResult) -> tuple[tuple[Path, int], ...]:
    """The def line of each function the fix rewrites; the first changed line as fallback."""
    locations: list[tuple[Path, int]] = []
    for change in result.changes:
        path = change.path.resolve()
        lines = sorted({def_line(target) for target in change.targets})
        if not lines:
            edits = minimal_edits(change.original, change.fixed)
            lines = [edits[0].range.start.line + 1 if edits else 1]
        locations.extend((path, line) for line in lines)
    return tuple(locations)
