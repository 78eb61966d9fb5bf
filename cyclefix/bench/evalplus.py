"""HumanEval and MBPP+ as EvalPlus evaluates instruct models (Liu et al. 2023, evalplus 0.3.1).

Round 0 is EvalPlus's `codegen` for a chat model: its instruction and response prefix around
the task's prompt as given (bench.prompt), the model's own chat template, greedy, 768 new tokens,
EvalPlus's stop strings, then its sanitizer (bench.evalplus_sanitize) and nothing of the prompt
added. Scoring: MBPP+ base inputs ("MBPP") and base plus extra inputs ("MBPP+") against the
reference with EvalPlus's oracles and time limits (bench.mbpp_oracle); HumanEval with its own
`check` (HumanEval+'s extra inputs ship in no installable package, so only the base figure).
Rounds 1..N are cyclefix's refine loop fed by the visible examples only (the docstring's, or
the assert in MBPP+'s prompt), scored on the same hidden tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cyclefix.bench.humaneval import load_humaneval
from cyclefix.bench.mbpp import (
    MBPP_PLUS_FILE,
    confirmed_prompt_asserts,
    find_data_dir,
    oracle_source,
    plus_task,
    read_jsonl,
)
from cyclefix.bench.prompt import ANSWER_PREFIX, STOP_SEQUENCES
from cyclefix.bench.tasks import BenchTask
from cyclefix.models.backend import (
    ChatMessage,
    Fork,
    ForksCheck,
    GenerationOptions,
    GenerationResult,
    TextCallback,
    TextCheck,
)

if TYPE_CHECKING:
    from cyclefix.refine import Backend

# evalplus/provider/utility.py EOS plus the chat fence hf.py adds; the special tokens among
# them end generation in llama.cpp anyway.
EVALPLUS_STOP = ("\n```\n", "\nif __name__", "\ndef main(", "\nprint(")

# MBPP+ v0.2.0 (378 tasks, what evalplus 0.3.1 and the published figures use) is v0.1.0 (the
# 399 tasks in ../shared) evolved by EvalPlus's tools/mbpp/fix_v010.py (links cut from 19
# prompts) and fix_v011.py (these 21 ill-formed tasks dropped).
MBPP_PLUS_V020_DROPPED = frozenset(
    {83, 115, 117, 143, 164, 229, 249, 295, 396, 400, 407, 431, 438, 442, 461, 574, 582,
     595, 640, 746, 783}
)  # fmt: skip
_LINK = re.compile(r"https?://\S+")


def mbpp_plus_v020(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """MBPP+ v0.1.0 rows as v0.2.0: the dropped tasks left out, links cut from prompts."""
    out: list[dict[str, Any]] = []
    for row in rows:
        if int(str(row["task_id"]).split("/")[-1]) in MBPP_PLUS_V020_DROPPED:
            continue
        out.append({**row, "prompt": _LINK.sub("", row["prompt"])})
    return out


def load_evalplus_mbpp(data_dir: Path | None = None) -> list[BenchTask]:
    """The 378 MBPP+ v0.2.0 tasks: EvalPlus's prompt verbatim, its assert the visible test."""
    rows = mbpp_plus_v020(read_jsonl(find_data_dir(data_dir) / MBPP_PLUS_FILE))
    visible = confirmed_prompt_asserts(rows)
    source = oracle_source()
    return [
        plus_task(
            row,
            visible[row["task_id"]],
            source,
            task_id=str(row["task_id"]),
            prompt=row["prompt"],
            protocol="evalplus",
        )
        for row in rows
    ]


def load_evalplus_humaneval(path: Path | None = None) -> list[BenchTask]:
    """The 164 HumanEval tasks under the EvalPlus protocol (base tests only)."""
    return [dataclasses.replace(t, protocol="evalplus") for t in load_humaneval(path)]


def load_evalplus(suite: str, data_dir: Path | None = None) -> list[BenchTask]:
    if suite == "evalplus-humaneval":
        return load_evalplus_humaneval()
    return load_evalplus_mbpp(data_dir)


def add_evalplus_parsers(
    suites: argparse._SubParsersAction[argparse.ArgumentParser],
    add_run_options: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
) -> None:
    """`cyclefix bench evalplus-humaneval` and `evalplus-mbpp`."""
    for name, text in (
        (
            "evalplus-humaneval",
            "HumanEval's 164 problems as EvalPlus runs instruct models (prompt, stop words, "
            "sanitizer), then refinement on the docstring examples; base tests score",
        ),
        (
            "evalplus-mbpp",
            "MBPP+ v0.2.0's 378 problems as EvalPlus runs instruct models, then refinement on "
            "the prompt's assert; MBPP (base inputs) and MBPP+ (base and extra inputs) score",
        ),
    ):
        p = suites.add_parser(name, help=text, description=text)
        add_run_options(p)
        if name == "evalplus-mbpp":
            p.add_argument(
                "--data",
                type=Path,
                default=None,
                metavar="DIR",
                help="folder holding MbppPlus-v0.1.0.jsonl (default ../shared/data/mbpp)",
            )
        p.set_defaults(func=run)


class EvalPlusBackend:
    """A backend whose round-0 requests stop where EvalPlus's do; every other request (the
    refine loop's) passes through unchanged."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        until: TextCheck | None = None,
    ) -> GenerationResult:
        if options.stop == STOP_SEQUENCES and options.answer_prefix == ANSWER_PREFIX:
            options = dataclasses.replace(options, stop=EVALPLUS_STOP)
        return self.inner.generate(messages, options, on_text=on_text, cancel=cancel, until=until)

    def forks_along(
        self,
        messages: Sequence[ChatMessage],
        answer_prefix: str,
        continuation: str,
        *,
        cancel: threading.Event | None = None,
        enough: ForksCheck | None = None,
    ) -> tuple[Fork, ...] | None:
        return self.inner.forks_along(
            messages, answer_prefix, continuation, cancel=cancel, enough=enough
        )

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # The window and token count of a local model, which prompts are fitted to.
        if name in ("n_ctx", "count_tokens"):
            return getattr(self.inner, name)
        raise AttributeError(name)
