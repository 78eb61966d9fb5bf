"""The seeded bugs of the real-project suite: a small JSON manifest kept in the repository.

It pins each library (name, version, sdist sha256, our pytest settings) and records each bug
as one line of one file: the line as shipped and the line with the bug. Applying a bug checks
that the shipped line is there, so a rerun always injects exactly the same bugs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cyclefix.bench.projects_libraries import LibrarySpec
from cyclefix.errors import CyclefixError

MANIFEST_FORMAT = 1
# Where the seeded manifest lives in a checkout of this repository.
DEFAULT_MANIFEST = Path(__file__).resolve().parents[2] / "benchmarks" / "projects" / "manifest.json"


@dataclass(frozen=True)
class InjectedBug:
    bug_id: str  # e.g. "toolz-3": the task id
    library: str  # LibrarySpec.name
    path: str  # the mutated file, relative to the sdist root
    # The top-level function or method holding the line (the localizer's qualname).
    function: str
    line: int  # 1-based
    original: str  # the line as shipped, without its newline
    mutated: str  # the line with the bug
    kind: str  # the mutation kind (bench.mutate)
    description: str  # never shown to the model
    # The function, or the class holding it, is private (`_name`): only public code reaches it.
    private: bool
    # No failing test lives in the mutated module's own test file (test_<module>.py).
    cross_module: bool
    failing_count: int
    # The first failing node ids (a few, for the report), as seeded.
    failing_tests: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    seed: int
    libraries: tuple[LibrarySpec, ...]
    bugs: tuple[InjectedBug, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def library(self, name: str) -> LibrarySpec:
        for spec in self.libraries:
            if spec.name == name:
                return spec
        raise CyclefixError(f"the manifest has no library {name}")


def manifest_to_json(manifest: Manifest) -> str:
    data = {"format": MANIFEST_FORMAT, **asdict(manifest)}
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def _tuples(data: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    return {k: tuple(v) if k in names else v for k, v in data.items()}


def manifest_from_json(text: str) -> Manifest:
    try:
        data = json.loads(text)
        if data.get("format") != MANIFEST_FORMAT:
            raise CyclefixError(f"unknown manifest format {data.get('format')!r}")
        libraries = tuple(
            LibrarySpec(**_tuples(lib, ("tests", "deselect", "notes"))) for lib in data["libraries"]
        )
        bugs = tuple(InjectedBug(**_tuples(bug, ("failing_tests",))) for bug in data["bugs"])
        return Manifest(int(data["seed"]), libraries, bugs, tuple(data.get("notes", ())))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CyclefixError(f"not a projects manifest: {exc}") from exc


def read_manifest(path: Path) -> Manifest:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CyclefixError(f"cannot read the manifest {path}: {exc}") from exc
    return manifest_from_json(text)


def write_manifest(path: Path, manifest: Manifest) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest_to_json(manifest), encoding="utf-8")


def apply_bug(source: str, bug: InjectedBug) -> str:
    """`source` (the shipped file) with the bug's line replaced; refuses any other text there."""
    lines = source.splitlines(keepends=True)
    index = bug.line - 1
    if not 0 <= index < len(lines) or lines[index].rstrip("\r\n") != bug.original:
        raise CyclefixError(f"{bug.bug_id}: {bug.path}:{bug.line} is not the shipped line")
    ending = lines[index][len(bug.original) :]
    lines[index] = bug.mutated + ending
    return "".join(lines)


def materialize(pristine: Path, bug: InjectedBug, target: Path) -> Path:
    """A fresh copy of the pristine library with the bug injected, at `target`."""
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(pristine, target, symlinks=True)
    path = target / bug.path
    path.write_text(apply_bug(path.read_text(encoding="utf-8"), bug), encoding="utf-8")
    return target
