"""results.jsonl: one line per task, sample and round; append-only, resumable, Ctrl-C safe.

Each line is written whole with one write() and flushed, so an interrupted run leaves only
complete lines (a torn last line, from a killed process, is dropped on the next open).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from cyclefix.errors import CyclefixError

RESULTS_FILE = "results.jsonl"

# What happened in a round:
#   generated  round 0 of a generate suite (the one-shot answer)
#   given      round 0 of a folder suite (the buggy code as it is)
#   fixed      the refine loop verified a fix in this round
#   refined    refinement ran and did not fix
#   done       nothing to do: fixed earlier, or already passing its visible tests
#   stopped    the loop stopped before this round (budget, error, nothing to localize,
#              no visible tests to learn from)
RoundStatus = Literal["generated", "given", "fixed", "refined", "done", "stopped"]
# Who wrote a candidate (AttemptStats.origin): a model's answer, a token edit
# (refine.token_edits), or one part of an earlier answer tried alone (refine.partial).
AttemptOrigin = Literal["answer", "token_edit", "part"]
ORIGINS: tuple[AttemptOrigin, ...] = get_args(AttemptOrigin)


@dataclass(frozen=True)
class AttemptStats:
    verdict: str
    copy: bool
    temperature: float
    prompt_tokens: int
    completion_tokens: int
    # Seconds for the whole attempt (generation and tests), and for generation alone.
    seconds: float
    generation_seconds: float
    decode_seconds: float
    tests_passed: int = 0
    tests_total: int = 0
    forked: bool = False
    partial: bool = False  # a part of an earlier answer, tried alone (refine.partial)
    token_edit: bool = False  # a token of a suspicious line edited (refine.token_edits)
    # The attempt's phases (refine.types.Attempt); zero in lines written before they were kept.
    score_s: float = 0.0
    prompt_eval_s: float = 0.0
    prompt_tokens_cached: int = 0
    generate_s: float = 0.0
    completion_tokens_replayed: int = 0
    tests_s: float = 0.0
    # tests_s split: startup_s, collect_s, tests_s, total_s (refine.report); None if no run.
    tests_phases: dict[str, float] | None = None
    # Its candidate is the fix (False in lines written before this was kept: the fixed
    # round's last passing attempt is).
    fix: bool = False
    # The code of a passing attempt (empty for the others): the candidates a vote chose
    # among (refine.agreement) can be scored on the hidden tests after the run.
    code: str = ""

    @property
    def origin(self) -> AttemptOrigin:
        """Who wrote the candidate: the model, a token edit, or a part of an earlier answer."""
        if self.token_edit:
            return "token_edit"
        return "part" if self.partial else "answer"


@dataclass(frozen=True)
class RoundResult:
    suite: str
    model: str
    task_id: str
    sample: int
    round: int
    status: RoundStatus
    # The hidden tests pass for the code the user would have after this round.
    passed: bool
    # The visible tests pass for that code; None when the task has no visible tests.
    visible_passed: bool | None
    attempts: tuple[AttemptStats, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_seconds: float = 0.0
    decode_seconds: float = 0.0
    # Wall seconds this round cost the product (generation and its test runs).
    seconds: float = 0.0
    # Round 0: solution.py as generated (or given); later rounds: the round's last candidate.
    code: str = ""
    # The refine loop's status for the whole fix (rounds >= 1), e.g. "fixed", "not_fixed".
    fix_status: str = ""
    note: str = ""
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.model, self.task_id, self.sample, self.round)

    @property
    def copies(self) -> int:
        return sum(1 for a in self.attempts if a.copy)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoundResult:
        attempts = tuple(AttemptStats(**a) for a in data.get("attempts", ()))
        fields = {
            k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "attempts"
        }
        return cls(attempts=attempts, **fields)


def read_results(path: Path) -> list[RoundResult]:
    """Every complete line of a results file, later lines replacing earlier ones of the same key."""
    if not path.exists():
        return []
    by_key: dict[tuple[str, str, int, int], RoundResult] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CyclefixError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = RoundResult.from_dict(json.loads(line))
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            if number == len(text.splitlines()) and not text.endswith("\n"):
                continue  # a torn last line from a killed run: that round is simply redone
            raise CyclefixError(f"{path}:{number} is not a result line ({exc})") from exc
        by_key[record.key] = record
    return list(by_key.values())


class ResultsWriter:
    """Appends whole lines under a lock, from any worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_torn_tail()
        self._fh = path.open("a", encoding="utf-8")

    def _drop_torn_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.path.open("r+b") as fh:
                fh.truncate(keep)

    def write(self, records: Iterable[RoundResult]) -> None:
        text = "".join(r.to_json() + "\n" for r in records)
        if not text:
            return
        with self._lock:
            self._fh.write(text)
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def group_runs(
    records: Iterable[RoundResult],
) -> Iterator[tuple[tuple[str, str, int], dict[int, RoundResult]]]:
    """Records by run (model, task, sample), each as round -> record."""
    runs: dict[tuple[str, str, int], dict[int, RoundResult]] = {}
    for r in records:
        runs.setdefault((r.model, r.task_id, r.sample), {})[r.round] = r
    yield from runs.items()
