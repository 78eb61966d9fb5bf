"""refine.flow_lines: token edits also try the lines an error flows from, one step upstream."""

from __future__ import annotations

from cyclefix.refine.flow_lines import flow_lines
from cyclefix.refine.localize import Localization
from cyclefix.refine.suspicious_lines import edit_lines
from cyclefix.refine.types import Target
from cyclefix.runner.results import Frame, TestCaseResult

ENCODE = (
    "    def encode(self, data, final):\n"  # 20
    "        size = len(data)\n"  # 21
    "        emitted = self.emitted + size\n"  # 22
    "        may_end_with_dot = data.endswith('.') and not final\n"  # 23
    "        if emitted > LIMIT + may_end_with_dot:\n"  # 24
    "            raise TooLong(\n"  # 25
    "                'domain too long',\n"  # 26
    "                position=size + 2,\n"  # 27
    "            )\n"  # 28
    "        self.emitted = emitted\n"  # 29
    "        return data\n"  # 30
)
TARGET = Target("codec.py", "Encoder.encode", 20, 30, ENCODE)
RAISE = Frame("codec.py", 25, "encode", "raise TooLong(")


def test_an_error_flows_from_its_statement_its_condition_and_their_assignments() -> None:
    assert flow_lines(TARGET, 25) == (25, 26, 27, 28, 24, 22, 23, 21)


def test_a_line_outside_any_statement_flows_from_nothing() -> None:
    assert flow_lines(TARGET, 99) == ()


def _located(frame: Frame) -> Localization:
    failing = TestCaseResult(
        nodeid="tests/test_codec.py::test_long", outcome="failed", project_frames=(frame,)
    )
    return Localization(targets=(TARGET,), primary=failing)


def test_token_edits_try_the_lines_the_error_flows_from_first() -> None:
    lines = edit_lines(_located(RAISE), [TARGET], ENCODE)
    assert {line.text: line.penalty for line in lines} == {
        "raise TooLong(": 0.0,
        "'domain too long',": 0.0,
        "position=size + 2,": 0.0,
        ")": 0.0,
        "if emitted > LIMIT + may_end_with_dot:": 0.0,
        "emitted = self.emitted + size": 0.0,
        "may_end_with_dot = data.endswith('.') and not final": 0.0,
        "size = len(data)": 0.0,
    }


def test_a_frame_whose_line_the_code_no_longer_holds_adds_nothing() -> None:
    moved = Frame("codec.py", 25, "encode", "self.emitted = emitted")
    assert edit_lines(_located(moved), [TARGET], ENCODE) == ()
