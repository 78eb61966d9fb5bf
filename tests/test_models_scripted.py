"""The scripted backend: replies in order, streamed in pieces, cancellable, calls recorded."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from cyclefix.models.backend import ChatMessage, GenerationOptions
from cyclefix.models.errors import ModelError
from cyclefix.models.scripted import ScriptedBackend

OPTIONS = GenerationOptions()
ASK = (ChatMessage("system", "be brief"), ChatMessage("user", "fix the bug please"))


def test_replies_in_order_then_the_last_repeated() -> None:
    backend = ScriptedBackend(["first reply", "second reply"])
    texts = [backend.generate(ASK, OPTIONS).text for _ in range(4)]
    assert texts == ["first reply", "second reply", "second reply", "second reply"]


def test_streams_small_pieces_that_add_up_to_the_text() -> None:
    reply = "Here is the fix:\n```python\ndef f(x):\n    return x + 1\n```\n"
    pieces: list[str] = []
    result = ScriptedBackend([reply]).generate(ASK, OPTIONS, on_text=pieces.append)
    assert len(pieces) > 5
    assert "".join(pieces) == result.text == reply
    assert result.finish_reason == "stop"
    # Rough counts: whitespace-separated words.
    assert result.completion_tokens == len(reply.split())
    assert result.prompt_tokens == 6


def test_records_the_messages_and_options_of_every_call() -> None:
    backend = ScriptedBackend(["a"])
    other = (ChatMessage("user", "again"),)
    backend.generate(ASK, OPTIONS)
    backend.generate(other, GenerationOptions(temperature=0.6))
    assert backend.calls == [ASK, other]
    assert backend.calls[0][-1].content == "fix the bug please"
    assert [o.temperature for o in backend.options] == [0.2, 0.6]


def test_cancel_stops_between_pieces() -> None:
    backend = ScriptedBackend(["one two three four five six seven eight"])
    cancel = threading.Event()
    pieces: list[str] = []

    def on_text(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 2:
            cancel.set()

    result = backend.generate(ASK, OPTIONS, on_text=on_text, cancel=cancel)
    assert result.finish_reason == "cancelled"
    assert result.text == "one two "


def test_until_ends_the_answer_where_it_is_complete() -> None:
    backend = ScriptedBackend(["one two three four five"])
    seen: list[str] = []

    def two_words(text: str) -> bool:
        seen.append(text)
        return len(text.split()) == 2

    result = backend.generate(ASK, OPTIONS, until=two_words)
    assert result.finish_reason == "stop"
    assert result.text == seen[-1] == "one two "


def test_cancel_from_another_thread_with_token_delay() -> None:
    backend = ScriptedBackend(["word " * 200], token_delay=0.01)
    cancel = threading.Event()
    timer = threading.Timer(0.1, cancel.set)
    timer.start()
    result = backend.generate(ASK, OPTIONS, cancel=cancel)
    timer.join()
    assert result.finish_reason == "cancelled"
    assert 0 < result.completion_tokens < 200


def test_stop_sequence_and_max_tokens() -> None:
    backend = ScriptedBackend(["alpha beta END gamma delta"])
    stopped = backend.generate(ASK, GenerationOptions(stop=("END",)))
    assert stopped.text == "alpha beta " and stopped.finish_reason == "stop"
    limited = backend.generate(ASK, GenerationOptions(max_tokens=3))
    assert limited.text == "alpha beta END " and limited.finish_reason == "length"


def test_no_replies_fails_only_when_asked() -> None:
    backend = ScriptedBackend([])
    with pytest.raises(ModelError, match="no replies"):
        backend.generate(ASK, OPTIONS)


def test_load_from_a_json_list(tmp_path: Path) -> None:
    path = tmp_path / "replies.json"
    path.write_text(json.dumps(["x = 1", "x = 2"]))
    backend = ScriptedBackend.from_file(path)
    assert backend.replies == ("x = 1", "x = 2")
    assert backend.name == "scripted:replies.json"


def test_load_from_a_json_object(tmp_path: Path) -> None:
    path = tmp_path / "replies.json"
    path.write_text(json.dumps({"replies": ["ok"], "token_delay": 0.02}))
    backend = ScriptedBackend.from_file(path)
    assert backend.replies == ("ok",) and backend.token_delay == 0.02


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[1, 2]", "non-empty JSON list of strings"),
        ("[]", "non-empty JSON list of strings"),
        ('{"replies": "x"}', "non-empty JSON list of strings"),
        ('{"replies": ["x"], "token_delay": -1}', "token_delay"),
        ('["x",', "not valid JSON"),
    ],
)
def test_bad_reply_files(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "replies.json"
    path.write_text(content)
    with pytest.raises(ModelError, match=expected) as caught:
        ScriptedBackend.from_file(path)
    assert "\n" not in str(caught.value)


def test_missing_reply_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        ScriptedBackend.from_file(tmp_path / "absent.json")
