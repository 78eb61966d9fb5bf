"""A backend that answers from a list of prepared replies: for tests of the loop and frontends."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from cyclefix.models.backend import (
    ChatMessage,
    FinishReason,
    Fork,
    ForksCheck,
    GenerationOptions,
    GenerationResult,
    TextCallback,
    TextCheck,
)
from cyclefix.models.errors import ModelError

SPEC_PREFIX = "scripted:"
# A word with the whitespace after it, or a run of leading whitespace: small streamed pieces.
_PIECE = re.compile(r"\S+\s*|\s+")


def _count_tokens(text: str) -> int:
    # Rough count, whitespace-separated words; a scripted reply has no real tokenizer.
    return len(text.split())


class ScriptedBackend:
    """Gives `replies` in order, then repeats the last; records every call's messages."""

    def __init__(
        self, replies: Sequence[str], token_delay: float = 0.0, name: str = "scripted"
    ) -> None:
        # May be empty for tests that expect no generation at all; generate() then raises.
        self.replies = tuple(replies)
        # Seconds to sleep before each streamed piece, to make generation observable.
        self.token_delay = token_delay
        self._name = name
        self.calls: list[tuple[ChatMessage, ...]] = []
        self.options: list[GenerationOptions] = []
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path) -> ScriptedBackend:
        """Load a JSON list of replies, or {"replies": [...], "token_delay": seconds}."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"scripted replies file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"cannot read scripted replies file {path}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
        token_delay: object = 0.0
        if isinstance(data, dict):
            replies = data.get("replies")
            token_delay = data.get("token_delay", 0.0)
        else:
            replies = data
        if (
            not isinstance(replies, list)
            or not replies
            or not all(isinstance(reply, str) for reply in replies)
        ):
            raise ModelError(
                f"{path} must hold a non-empty JSON list of strings "
                '(or {"replies": [...], "token_delay": seconds})'
            )
        if not isinstance(token_delay, int | float) or token_delay < 0:
            raise ModelError(f"{path}: token_delay must be a number of seconds >= 0")
        return cls(replies, token_delay=float(token_delay), name=f"scripted:{path.name}")

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
        with self._lock:
            if not self.replies:
                raise ModelError(f"{self._name} has no replies to give")
            reply = self.replies[min(len(self.calls), len(self.replies) - 1)]
            self.calls.append(tuple(messages))
            self.options.append(options)
        started = time.perf_counter()
        finish_reason: FinishReason = "stop"
        stop_at = min((i for s in options.stop if (i := reply.find(s)) >= 0), default=-1)
        if stop_at >= 0:
            reply = reply[:stop_at]
        pieces: list[str] = []
        words = 0
        for piece in _PIECE.findall(reply):
            if cancel is not None and cancel.is_set():
                finish_reason = "cancelled"
                break
            if words + _count_tokens(piece) > options.max_tokens:
                finish_reason = "length"
                break
            if self.token_delay:
                time.sleep(self.token_delay)
            words += _count_tokens(piece)
            pieces.append(piece)
            if on_text is not None:
                on_text(piece)
            if until is not None and until("".join(pieces)):
                break
        finished = time.perf_counter()
        text = "".join(pieces)
        return GenerationResult(
            text=text,
            prompt_tokens=sum(_count_tokens(m.content) for m in messages),
            completion_tokens=_count_tokens(text),
            seconds=finished - started,
            # Nothing to read before the first piece.
            prompt_seconds=0.0,
            finish_reason=finish_reason,
        )

    def forks_along(
        self,
        messages: Sequence[ChatMessage],
        answer_prefix: str,
        continuation: str,
        *,
        cancel: threading.Event | None = None,
        enough: ForksCheck | None = None,
    ) -> tuple[Fork, ...] | None:
        """A scripted backend has no logits."""
        return None

    def close(self) -> None:
        """Nothing to release."""
