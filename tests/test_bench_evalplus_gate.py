"""The training gate: a tuned model is default or recommended only with a passing gate result."""

from __future__ import annotations

import dataclasses

import pytest

from cyclefix.models.errors import ModelError
from cyclefix.models.registry import (
    DEFAULT_MODEL,
    GATE_PROTOCOL,
    REGISTRY,
    GateFigure,
    GateResult,
    ModelEntry,
    check_entry,
    checked_registry,
)

BASE = REGISTRY["qwen2.5-coder-1.5b"]


def tuned(**changes: object) -> ModelEntry:
    fields: dict[str, object] = {"name": "tuned-1.5b", "role": "available",
                                 "tuned_from": BASE.name, "gate": None}  # fmt: skip
    fields.update(changes)
    return dataclasses.replace(BASE, **fields)  # type: ignore[arg-type]


def gate(humaneval: float = 82.0, mbpp_plus: float = 60.0, projects: float = 60.0) -> GateResult:
    return GateResult(
        protocol=GATE_PROTOCOL,
        against=BASE.name,
        figures=(
            GateFigure("evalplus-humaneval", "base", base_model=80.5, tuned=humaneval),
            GateFigure("evalplus-mbpp", "plus", base_model=58.0, tuned=mbpp_plus),
            GateFigure("projects", "fix_rate", base_model=57.1, tuned=projects),
        ),
        evidence="benchmarks/runs/gate-tuned-1.5b/",
    )


@pytest.mark.parametrize("role", ["default", "recommended"])
def test_a_tuned_entry_without_a_gate_result_cannot_be_promoted(role: str) -> None:
    with pytest.raises(ModelError, match="without a recorded training-gate result"):
        check_entry(tuned(role=role))


def test_a_tuned_entry_without_a_gate_result_may_be_available() -> None:
    check_entry(tuned())


def test_a_gate_result_that_loses_on_one_figure_does_not_pass() -> None:
    with pytest.raises(ModelError, match=r"evalplus-mbpp plus: 57\.0 does not beat .* 58\.0"):
        check_entry(tuned(role="recommended", gate=gate(mbpp_plus=57.0)))


def test_a_gate_result_missing_the_real_project_suite_does_not_pass() -> None:
    partial = dataclasses.replace(gate(), figures=gate().figures[:2])
    with pytest.raises(ModelError, match="no projects fix_rate figure"):
        check_entry(tuned(role="recommended", gate=partial))


def test_a_gate_result_against_another_base_model_does_not_pass() -> None:
    other = dataclasses.replace(gate(), against="qwen2.5-coder-0.5b")
    with pytest.raises(ModelError, match=r"gated against qwen2\.5-coder-0\.5b"):
        check_entry(tuned(role="recommended", gate=other))


def test_a_passing_gate_result_lets_a_tuned_entry_be_recommended() -> None:
    check_entry(tuned(role="recommended", gate=gate()))


def test_the_registry_has_exactly_one_default_and_it_is_the_default_model() -> None:
    assert [e.name for e in REGISTRY.values() if e.role == "default"] == [DEFAULT_MODEL]
    with pytest.raises(ModelError, match="the default model must be"):
        checked_registry((BASE, tuned(name="x", role="default", gate=gate())), DEFAULT_MODEL)
