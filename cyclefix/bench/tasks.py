"""One benchmark task: what the model may see, and the hidden tests that score it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# generate: round 0 writes solution.py from a description (HumanEval, MBPP);
# folder: round 0 is the buggy project as given.
TaskKind = Literal["generate", "folder"]
# cycle: round 0 as CYCLE words it (the prompt's imports kept, demo code cut);
# evalplus: round 0 as EvalPlus scores instruct models (its stop words and sanitizer, nothing
# of the prompt added to the answer).
TaskProtocol = Literal["cycle", "evalplus"]

SOLUTION_FILE = "solution.py"
VISIBLE_TEST_FILE = "test_visible.py"
HIDDEN_TEST_FILE = "test_hidden.py"


@dataclass(frozen=True)
class BenchTask:
    task_id: str
    kind: TaskKind
    # generate tasks -------------------------------------------------------------------------
    # The accelerate-mode request shown to the model in round 0.
    prompt: str = ""
    # The function the tests call.
    entry_point: str = ""
    # Code kept in front of the model's answer in solution.py (HumanEval: imports, helpers).
    preamble: str = ""
    # The intent, put back as the entry function's docstring when the model's answer drops it,
    # so refinement rounds still see the description (CYCLE's first information source).
    description: str = ""
    # Signature used when the answer holds no usable function: "def f(a, b):".
    fallback_signature: str = ""
    # Source of test_visible.py; empty when the task has no visible tests (one-shot only).
    visible_tests: str = ""
    # folder tasks ---------------------------------------------------------------------------
    # The project folder (its hidden_tests/ is left out of what the model's loop sees).
    source_dir: Path | None = None
    # both -----------------------------------------------------------------------------------
    # Extra files written into the scoring copy only: name -> text.
    hidden_files: Mapping[str, str] = field(default_factory=dict)
    # Test paths (relative to the scoring copy) that decide pass or fail.
    hidden_tests: tuple[str, ...] = ()
    # Seconds one hidden test may take before it counts as hung.
    hidden_timeout: float = 10.0
    protocol: TaskProtocol = "cycle"

    @property
    def slug(self) -> str:
        """The task id as a file name."""
        return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.task_id)
