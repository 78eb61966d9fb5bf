"""MBPP problems as training inputs: the upstream files, their splits, and their tests."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cyclefix.errors import CyclefixError

# Upstream split of mbpp.jsonl by task_id (Austin et al. 2021).
SPLITS: dict[str, range] = {
    "prompt": range(1, 11),
    "test": range(11, 511),
    "validation": range(511, 601),
    "train": range(601, 975),
}
# Training data may only come from these; the test split is what bench evaluates on.
TRAINING_SPLITS = ("train", "validation")
DATA_DIR_ENV = "CYCLEFIX_DATA_DIR"


@dataclass(frozen=True)
class MbppProblem:
    task_id: int
    text: str
    code: str
    test_setup_code: str
    test_list: tuple[str, ...]

    @property
    def entry_point(self) -> str:
        """The function the tests call: the first name called in the first assert."""
        for test in self.test_list:
            match = re.search(r"assert\s+(?:not\s+)?\(?\s*(?:set\()?\s*([A-Za-z_]\w*)\s*\(", test)
            if match and match.group(1) not in {"set", "math", "sorted", "abs", "round", "str"}:
                return match.group(1)
        defs = re.findall(r"^def\s+([A-Za-z_]\w*)", self.code, flags=re.M)
        return defs[-1] if defs else "solution"

    @property
    def split(self) -> str:
        for name, ids in SPLITS.items():
            if self.task_id in ids:
                return name
        return "unknown"


def normalize_code(code: str) -> str:
    """Unix newlines, no trailing blank lines, one final newline (MBPP ships CRLF)."""
    text = code.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    return text + "\n" if text else ""


def default_mbpp_file() -> Path:
    """mbpp.jsonl: $CYCLEFIX_DATA_DIR/mbpp, else the shared/data folder beside the repository."""
    override = os.environ.get(DATA_DIR_ENV)
    candidates = [Path(override) / "mbpp" / "mbpp.jsonl"] if override else []
    here = Path(__file__).resolve()
    candidates += [parent / "shared" / "data" / "mbpp" / "mbpp.jsonl" for parent in here.parents]
    candidates += [Path.cwd() / "../shared/data/mbpp/mbpp.jsonl"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CyclefixError(
        "MBPP data not found; pass a path to mbpp.jsonl or set CYCLEFIX_DATA_DIR to the folder "
        "holding mbpp/mbpp.jsonl"
    )


def read_jsonl(path: Path) -> list[dict[str, object]]:
    """Rows of a JSON-lines file; a one-line error naming the bad line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CyclefixError(f"cannot read {path}: {exc.strerror or exc}") from None
    rows: list[dict[str, object]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CyclefixError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise CyclefixError(f"{path}:{number}: expected a JSON object per line")
        rows.append(row)
    return rows


def write_jsonl(path: Path, rows: Iterable[dict[str, object]]) -> int:
    """Write rows atomically (temp file + rename) so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    return count


def problem_from_row(row: dict[str, object]) -> MbppProblem:
    tests = row.get("test_list")
    if not isinstance(tests, list) or not isinstance(row.get("code"), str):
        raise CyclefixError("an MBPP row needs `code` and `test_list`")
    task_id = row.get("task_id", 0)
    return MbppProblem(
        task_id=int(task_id) if isinstance(task_id, int | str) else 0,
        text=str(row.get("text") or row.get("prompt") or ""),
        code=normalize_code(str(row["code"])),
        test_setup_code=str(row.get("test_setup_code") or ""),
        test_list=tuple(str(t) for t in tests),
    )


def load_problems(path: Path, splits: Sequence[str] = TRAINING_SPLITS) -> list[MbppProblem]:
    """MBPP problems of the given splits ("all" for every row), in task_id order."""
    unknown = [s for s in splits if s not in SPLITS and s != "all"]
    if unknown:
        raise CyclefixError(f"unknown MBPP split {unknown[0]!r}; use {', '.join(SPLITS)} or all")
    problems = [problem_from_row(row) for row in read_jsonl(path)]
    if "all" not in splits:
        problems = [p for p in problems if p.split in splits]
    return sorted(problems, key=lambda p: p.task_id)


def resolve_problem_source(spec: str) -> tuple[Path, tuple[str, ...]]:
    """`mbpp-train`, `mbpp-validation`, `mbpp-train+validation` or `PATH.jsonl[:split,...]`."""
    if spec.startswith("mbpp-"):
        splits = tuple(spec.removeprefix("mbpp-").replace("+", ",").split(","))
        if "test" in splits:
            raise CyclefixError("the MBPP test split is for evaluation; train on train/validation")
        return default_mbpp_file(), splits
    path_text, _, split_text = spec.partition(":")
    splits = tuple(split_text.split(",")) if split_text else TRAINING_SPLITS
    return Path(path_text).expanduser(), splits
