"""Shared helpers of the TUI tests: fixture projects, scripted models, waiting on the app."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from textual.pilot import Pilot

from cyclefix.models.backend import (
    ChatMessage,
    GenerationOptions,
    GenerationResult,
    TextCallback,
    TextCheck,
)
from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import Backend, RefineConfig
from cyclefix.tui.app import CyclefixApp
from cyclefix.tui.settings import TuiSettings

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tui"
SIZE = (140, 40)

BUGGY_MEAN = '''def mean(values: list[float]) -> float:
    """Arithmetic mean of a non-empty list."""
    return sum(values) / (len(values) + 1)
'''
FIXED_MEAN = '''def mean(values: list[float]) -> float:
    """Arithmetic mean of a non-empty list."""
    return sum(values) / len(values)
'''
FIX_REPLY = "The denominator counts one value too many.\n```python\n" + FIXED_MEAN + "```\n"
COPY_REPLY = "Here is the function:\n```python\n" + BUGGY_MEAN + "```\n"


def copy_project(tmp_path: Path, name: str = "calc") -> Path:
    project = tmp_path / name
    shutil.copytree(FIXTURES / name, project)
    return project


def scripted_factory(replies: Sequence[str], token_delay: float = 0.0) -> Callable[[str], Backend]:
    """A backend factory that answers `replies` in order, named after the spec it is given."""

    def factory(spec: str) -> Backend:
        return ScriptedBackend(list(replies), token_delay=token_delay, name=spec)

    return factory


class GatedBackend:
    """Streams `pieces`, then holds the answer until `release` or cancel is set."""

    def __init__(self, pieces: Sequence[str], answer: str, name: str = "gated") -> None:
        self.pieces = tuple(pieces)
        self.answer = answer
        self._name = name
        self.release = threading.Event()
        self.returned = threading.Event()
        self.finish_reasons: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        until: TextCheck | None = None,
    ) -> GenerationResult:
        started = time.perf_counter()
        for piece in self.pieces:
            if on_text is not None:
                on_text(piece)
        reason = "stop"
        while not self.release.is_set():
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
                break
            time.sleep(0.02)
        self.finish_reasons.append(reason)
        self.returned.set()
        text = "".join(self.pieces) if reason == "cancelled" else self.answer
        return GenerationResult(
            text=text,
            prompt_tokens=10,
            completion_tokens=len(self.pieces),
            seconds=time.perf_counter() - started,
            prompt_seconds=0.0,
            finish_reason=reason,  # type: ignore[arg-type]
        )

    def forks_along(self, *args: object, **kwargs: object) -> None:
        """No logits to score an answer with."""
        return None

    def close(self) -> None:
        self.release.set()


def make_app(
    project: Path,
    model: str = "scripted-fix",
    *,
    factory: Callable[[str], Backend] | None = None,
    watch: bool = False,
    run_on_start: bool = True,
    show_timings: bool = False,
    rounds: int = 2,
    budget: float = 120.0,
    per_test_timeout: float = 3.0,
    model_names: Sequence[str] = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"),
) -> CyclefixApp:
    settings = TuiSettings(
        root=project,
        model=model,
        config=RefineConfig(
            rounds=rounds, budget_seconds=budget, per_test_timeout=per_test_timeout
        ),
        model_names=tuple(model_names),
        watch=watch,
        run_on_start=run_on_start,
        show_timings=show_timings,
    )
    if factory is None:
        return CyclefixApp(settings)
    return CyclefixApp(settings, backend_factory=factory)


async def wait_for(
    pilot: Pilot[None], condition: Callable[[], bool], what: str, timeout: float = 60.0
) -> None:
    """Let the app run until `condition()` holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await pilot.pause(0.05)
    await pilot.pause()


def idle_with_results(app: CyclefixApp) -> bool:
    return not app.busy and bool(app.results.nodeids)


def status_plain(app: CyclefixApp) -> str:
    from cyclefix.tui.widgets.status_bar import status_text

    return status_text(app.status_info()).plain
