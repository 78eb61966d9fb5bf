"""A long function fits the real model's window when its tokens do, whatever its length in
characters (refine.fit)."""

from __future__ import annotations

import pytest

from cyclefix.refine import open_backend
from cyclefix.refine.fit import NOTE_ROOM, WindowedBackend, fit_prompt
from cyclefix.refine.prompt import RefinePrompt, build_refine_messages

pytestmark = pytest.mark.model

# A 220-line function of about 9,900 characters (parse's `_handle_field` is 224 and 9,400).
LONG = "def handle(field, conversions):\n" + "".join(
    f'    elif field.kind == "kind_{i:03d}":\n        conversions[field.name] = convert_{i:03d}\n'
    for i in range(110)
).replace("    elif", "    if", 1)


def test_a_long_function_that_fits_in_tokens_is_shown_whole() -> None:
    backend = open_backend("qwen2.5-coder-0.5b")
    try:
        assert isinstance(backend, WindowedBackend)
        prompt = RefinePrompt(("handle",), LONG, "Test Case Failed: handle(...) raised KeyError")
        prompt_tokens = backend.count_tokens(build_refine_messages(prompt))
        fitted = fit_prompt(prompt, backend, 1024)
    finally:
        backend.close()
    # Two characters a token would have called the copy 4,470 tokens (it is 2,700): no room.
    assert prompt_tokens + len(LONG) // 2 + 1024 + NOTE_ROOM > backend.n_ctx
    assert fitted is not None and fitted.prompt.faulty_code == LONG


# As tabulate's `tabulate` (776 lines, 600 of them docstring): over the window as it is.
DOCUMENTED = (
    'def table(rows, headers=()):\n    """Format `rows` as a plain-text table.\n\n'
    + "".join(f"    >>> table([[{i}, 'x{i}']])\n    '{i}  x{i}'\n" for i in range(400))
    + '    """\n    return "\\n".join("  ".join(map(str, row)) for row in rows)\n'
)


def test_a_function_whose_docstring_overflows_the_window_is_shown_with_it_cut() -> None:
    backend = open_backend("qwen2.5-coder-0.5b")
    try:
        assert isinstance(backend, WindowedBackend)
        prompt = RefinePrompt(
            ("table",), DOCUMENTED, "Test Case Failed", code_under_test=DOCUMENTED
        )
        whole = backend.count_tokens(build_refine_messages(prompt))
        fitted = fit_prompt(prompt, backend, 1024)
    finally:
        backend.close()
    assert whole > backend.n_ctx  # the code alone is over the window
    assert fitted is not None and any("long docstring" in what for what in fitted.left_out)
    shown = fitted.prompt.faulty_code
    assert shown.startswith('def table(rows, headers=()):\n    """Format `rows` as a')
    assert shown.endswith('    return "\\n".join("  ".join(map(str, row)) for row in rows)\n')
    assert fitted.prompt.code_under_test == shown
