"""The cyclefix language server: tests on save, diagnostics, and verified fixes as code actions.

One class per concern, each building on the one before: core.py (state, client helpers,
diagnostics, jobs), fix_actions.py (code actions, edits, diffs, applying), refinement.py
(the model and the loop), on_save.py (debounced test runs); handlers.py wires LSP to them.
"""

from __future__ import annotations

from cyclefix.server.commands import (
    CMD_APPLY_FIX,
    CMD_CANCEL,
    CMD_REFINE,
    CMD_RUN_TESTS,
    CMD_SHOW_DIFF,
)
from cyclefix.server.core import (
    BadUri,
    LspJob,
    RequestFailed,
    path_of,
)
from cyclefix.server.fix_actions import TITLE_APPLY, TITLE_DIFF, TITLE_REFINE, TITLE_REFINE_AGAIN
from cyclefix.server.on_save import TestsOnSave
from cyclefix.server.progress import run_status_line
from cyclefix.session.ledger import localize

__all__ = [
    "CMD_APPLY_FIX",
    "CMD_CANCEL",
    "CMD_REFINE",
    "CMD_RUN_TESTS",
    "CMD_SHOW_DIFF",
    "TITLE_APPLY",
    "TITLE_DIFF",
    "TITLE_REFINE",
    "TITLE_REFINE_AGAIN",
    "BadUri",
    "CyclefixServer",
    "LspJob",
    "RequestFailed",
    "localize",
    "path_of",
    "run_status_line",
]


class CyclefixServer(TestsOnSave):
    """The language server: every feature of the modules above, in one object pygls serves."""
