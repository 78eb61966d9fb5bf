"""The refinement loop's public API: the only part of cyclefix the frontends call.

select(path, tests)           the project root, tests and Python for a path (a Selection)
check(path, tests)            run the selected tests on the user's files (path or Selection)
fix(path, backend, ...)       localize, prompt, guard, verify in a scratch copy, iterate
prepare_candidates(...)       start the warm worker a fix's candidates will use, ahead of it
apply_fix(result)             write a verified fix atomically, refusing stale files
apply_and_keep(result, mode)  apply_fix, then git commit or stage it (the gitOnApply setting)
open_backend(spec)            load a model: registry name, GGUF path, openai:URL#MODEL
"""

from cyclefix.models.backend import Backend, GenerationResult
from cyclefix.models.load import ModelError, open_backend
from cyclefix.refine.apply import StaleFixError, apply_fix
from cyclefix.refine.check import Selection, check, find_project_root, select, suspects
from cyclefix.refine.git import GitError, KeptFix, apply_and_keep
from cyclefix.refine.loop import fix, prepare_candidates
from cyclefix.refine.types import (
    Attempt,
    AttemptFinished,
    FileChange,
    FixFinished,
    FixResult,
    FixStatus,
    RefineConfig,
    RefineEvent,
    RoundRecord,
    RoundStarted,
    Target,
    TestsFinished,
    TestsStarted,
    TextGenerated,
    Verdict,
)
from cyclefix.runner.feedback import feedback_text
from cyclefix.runner.project import CONFIG_FILES
from cyclefix.runner.results import CollectionError, Frame, TestCaseResult, TestRunResult
from cyclefix.runner.warm import WarmWorkers

__all__ = [
    "CONFIG_FILES",
    "Attempt",
    "AttemptFinished",
    "Backend",
    "CollectionError",
    "FileChange",
    "FixFinished",
    "FixResult",
    "FixStatus",
    "Frame",
    "GenerationResult",
    "GitError",
    "KeptFix",
    "ModelError",
    "RefineConfig",
    "RefineEvent",
    "RoundRecord",
    "RoundStarted",
    "Selection",
    "StaleFixError",
    "Target",
    "TestCaseResult",
    "TestRunResult",
    "TestsFinished",
    "TestsStarted",
    "TextGenerated",
    "Verdict",
    "WarmWorkers",
    "apply_and_keep",
    "apply_fix",
    "check",
    "feedback_text",
    "find_project_root",
    "fix",
    "open_backend",
    "prepare_candidates",
    "select",
    "suspects",
]
