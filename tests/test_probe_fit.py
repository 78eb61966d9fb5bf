"""refine.fit: a prompt that fits the window but is long keeps only the outline it needs."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from cyclefix.models.backend import ChatMessage
from cyclefix.refine.fit import PROMPT_TOKENS, fit_prompt
from cyclefix.refine.outline import named_outline
from cyclefix.refine.prompt import RefinePrompt
from cyclefix.refine.types import Target

CONTEXT = """\
import os
import re
from decimal import ROUND_HALF_UP, Decimal

LIMIT = 10
OTHER = 3

def unrelated(a, b):
    \"\"\"Not on the failing path.\"\"\"
    ...

def helper(x):
    return LIMIT * x

class Cart:
    size = 0

    def add(self, item):
        ...

    def total(self):
        ...
"""


class Words:
    """Counts words as tokens, in a window far larger than the prompt."""

    n_ctx = 100_000

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return sum(len(m.content.split()) for m in messages)


PROMPT = RefinePrompt(
    names=("percent_of",),
    faulty_code="def percent_of(c, p):\n    return Decimal(c * p) / 100 + helper(1)\n",
    feedback="Test Case Failed: assert percent_of(125, 10) == 13",
    test_source="def test_cart():\n    assert Cart().total() == 13\n",
    description="Money helpers.",
    context=CONTEXT,
    path="money.py",
    related=(Target("cart.py", "Cart.total", 1, 2, "def total(self):\n    return 1\n"),),
)


def test_the_outline_keeps_what_the_shown_code_names() -> None:
    outline = named_outline(CONTEXT, PROMPT.faulty_code + PROMPT.test_source)
    assert outline is not None
    kept = outline.splitlines()
    assert "from decimal import Decimal" in kept  # of an import, only the names used
    assert "LIMIT = 10" in kept  # named by helper, shown in full
    assert "class Cart:" in kept and "    def total(self):" in kept
    assert not {"import os", "import re", "OTHER = 3", "def unrelated(a, b):"} & set(kept)
    assert "    def add(self, item):" not in kept


def test_names_in_comments_and_strings_are_not_uses() -> None:
    outline = named_outline(CONTEXT, "def f():\n    # os and re\n    return 'OTHER'\n")
    assert outline is not None
    assert not {"import os", "import re", "OTHER = 3"} & set(outline.splitlines())


def test_a_function_shown_in_full_stays_whole() -> None:
    outline = named_outline(CONTEXT, "")
    assert outline is not None and "def helper(x):\n    return LIMIT * x" in outline


def test_the_outline_says_how_many_definitions_it_left_out() -> None:
    outline = named_outline(CONTEXT, PROMPT.faulty_code + PROMPT.test_source)
    assert outline is not None
    assert outline.endswith("# ... (6 other definitions of the module left out)")


def test_a_context_that_does_not_parse_is_not_trimmed() -> None:
    assert named_outline("def broken(:\n", "broken") is None


def test_a_short_prompt_is_left_whole() -> None:
    fitted = fit_prompt(PROMPT, Words(), 300)
    assert fitted is not None and fitted.prompt == PROMPT and fitted.trimmed == ()


def test_a_long_prompt_trims_the_outline_first_and_keeps_the_code_and_feedback() -> None:
    long = dataclasses.replace(PROMPT, description="word " * PROMPT_TOKENS)
    fitted = fit_prompt(long, Words(), 300)
    assert fitted is not None and fitted.left_out == ()
    assert fitted.trimmed == ("the module's unreferenced outline", "the module's description")
    shown = fitted.prompt
    assert "import os" not in shown.context and shown.description == ""
    assert (shown.faulty_code, shown.feedback, shown.related) == (
        long.faulty_code,
        long.feedback,
        long.related,
    )


def test_an_outline_cut_mid_statement_is_read_up_to_the_cut() -> None:
    cut = "import os\nLIMIT = 10\n__all__ = [\n    'a',\n    'b',\n# ..."
    assert named_outline(cut, "LIMIT") == (
        "LIMIT = 10\n# ... (2 other definitions of the module left out)"
    )
