"""With the real 0.5B model, the first prompt on examples/invoicing says what the suspect did."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from cyclefix.models.backend import (
    Backend,
    ChatMessage,
    ForksCheck,
    GenerationOptions,
    GenerationResult,
    TextCallback,
    TextCheck,
)
from cyclefix.models.llama import LlamaCppBackend
from cyclefix.refine import RefineConfig, fix, open_backend

pytestmark = pytest.mark.model

INVOICING = Path(__file__).resolve().parent.parent / "examples" / "invoicing"


class Recording:
    """The real backend, keeping every prompt it was given."""

    def __init__(self, real: LlamaCppBackend) -> None:
        self.real = real
        self.prompts: list[str] = []

    @property
    def name(self) -> str:
        return self.real.name

    @property
    def n_ctx(self) -> int:
        return self.real.n_ctx

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return self.real.count_tokens(messages)

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        until: TextCheck | None = None,
    ) -> GenerationResult:
        self.prompts.append("\n".join(m.content for m in messages))
        return self.real.generate(messages, options, on_text=on_text, cancel=cancel)

    def forks_along(
        self,
        messages: Sequence[ChatMessage],
        answer_prefix: str,
        continuation: str,
        *,
        cancel: threading.Event | None = None,
        enough: ForksCheck | None = None,
    ) -> None:
        return None  # no copy scoring: this test reads prompts only

    def close(self) -> None:
        self.real.close()


@pytest.fixture(scope="module")
def recording() -> Iterator[Recording]:
    real = open_backend("qwen2.5-coder-0.5b")
    assert isinstance(real, LlamaCppBackend)
    backend = Recording(real)
    yield backend
    backend.close()


def test_the_first_prompt_shows_the_suspects_call_and_result(
    recording: Recording, tmp_path: Path
) -> None:
    project = tmp_path / "invoicing"
    shutil.copytree(INVOICING, project)
    backend: Backend = recording
    config = RefineConfig(rounds=1, budget_seconds=180, extend_to_budget=False)
    result = fix(project, backend, config=config)
    assert result.error is None
    first = recording.prompts[0]
    assert "What the code did in test_tax_rounds_half_up" in first
    assert "percent_of(125, 10) returned 12" in first
