"""A bench run's settings, kept in run.json so a rerun resumes only a run made the same way,
and the result lines it resumes from."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from cyclefix.bench.records import RESULTS_FILE, RoundResult, read_results
from cyclefix.errors import CyclefixError
from cyclefix.refine.types import RefineConfig

RUN_FILE = "run.json"


@dataclass(frozen=True)
class BenchSettings:
    suite: str
    rounds: int = 4
    samples: int = 1
    seed: int = 0
    # Round 0's temperature; None: greedy for one sample, 0.2 (CYCLE) for several.
    temperature: float | None = None
    max_tokens: int = 768
    # Time budget of one task's refinement, seconds (the loop's own budget).
    budget_seconds: float = 1800.0
    per_test_timeout: float = 3.0
    keep_work: bool = False
    # Past `rounds`, go on within the budget as `cyclefix fix` does (the last round's line
    # holds the extra rounds); off: the CYCLE protocol, exactly `rounds`.
    extend_to_budget: bool = False
    # Answers drawn to vote on a fix passing a few visible tests (refine.agreement).
    agreement_answers: int = RefineConfig.agreement_answers

    @property
    def first_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else 0.2

    def identity(self) -> dict[str, object]:
        """The settings a resumed run must share with the lines already written."""
        data = asdict(self)
        data.pop("keep_work")
        if not self.extend_to_budget:  # runs made before the setting existed resume as before
            data.pop("extend_to_budget")
        if self.agreement_answers == RefineConfig.agreement_answers:  # as runs before it
            data.pop("agreement_answers")
        data["temperature"] = self.first_temperature
        return data


def check_run_settings(out_dir: Path, settings: BenchSettings) -> None:
    """Refuse to mix lines made with other settings into one results file."""
    path = out_dir / RUN_FILE
    wanted = settings.identity()
    if path.exists():
        try:
            have = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CyclefixError(f"cannot read {path}: {exc}") from exc
        diff = sorted(k for k in wanted if have.get(k) != wanted[k])
        if diff:
            shown = ", ".join(f"{k}={have.get(k)!r} (now {wanted[k]!r})" for k in diff)
            raise CyclefixError(
                f"{out_dir} holds a run with other settings: {shown}; use another --out"
            )
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")


def load_all(out_dir: Path) -> list[RoundResult]:
    return read_results(out_dir / RESULTS_FILE)
