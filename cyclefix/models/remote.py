"""An OpenAI-compatible HTTP backend (llama-server, vLLM, Ollama): `openai:URL#MODEL`.

Streams /chat/completions with server-sent events through http.client, so it needs no extra
dependency. The API key, if the server wants one, comes from $CYCLEFIX_API_KEY and is sent to
the configured origin only: a redirect is an error, never followed (it could carry the key to
another host). A watchdog closes the connection on cancel or at the total deadline, so a server
that sends only keep-alive comments (`: ping`) cannot hold a generation open.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

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

SPEC_PREFIX = "openai:"
API_KEY_ENV = "CYCLEFIX_API_KEY"
DEFAULT_TIMEOUT = 120.0
# Whole-request cap, seconds: keep-alive lines reset the read timeout, never this.
DEFAULT_TOTAL_TIMEOUT = 600.0
# How often the watchdog looks at the cancel flag and the deadline, seconds.
WATCH_INTERVAL = 0.05


@dataclass(frozen=True)
class OpenAISpec:
    base_url: str
    model: str


def parse_openai_spec(spec: str) -> OpenAISpec:
    """Split 'openai:URL#MODEL'; one-line ModelError if it does not have that shape."""
    body = spec.removeprefix(SPEC_PREFIX)
    url, _, model = body.partition("#")
    if not url.startswith(("http://", "https://")) or not model:
        raise ModelError(
            f"bad model spec {spec!r}; expected openai:URL#MODEL, "
            "e.g. openai:http://127.0.0.1:8080/v1#qwen"
        )
    return OpenAISpec(base_url=url.rstrip("/"), model=model)


class OpenAICompatibleBackend:
    """A model served over HTTP; each generate() is one streamed chat completion request."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        # Seconds to wait for the connection and for each read of the stream.
        self.timeout = timeout
        # Seconds one generate() may take in all, however the server keeps the stream alive.
        self.total_timeout = total_timeout

    @classmethod
    def from_spec(
        cls,
        spec: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
    ) -> OpenAICompatibleBackend:
        parsed = parse_openai_spec(spec)
        return cls(parsed.base_url, parsed.model, timeout=timeout, total_timeout=total_timeout)

    @property
    def name(self) -> str:
        return f"{self.model}@{self.base_url}"

    def _connect(self, url: str) -> http.client.HTTPConnection:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "https":
            return http.client.HTTPSConnection(
                parts.netloc, timeout=self.timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(parts.netloc, timeout=self.timeout)

    def _request(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        connection: http.client.HTTPConnection,
        watch: _Watchdog,
    ) -> http.client.HTTPResponse:
        """POST the chat request on `connection`; its 200 response, else ModelError.

        http.client follows no redirect, so the Authorization header reaches only this origin.
        `watch` gets the socket as soon as it is connected, so cancel holds while waiting too.
        """
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": options.temperature,
            "top_p": options.top_p,
            "max_tokens": options.max_tokens,
        }
        if options.stop:
            body["stop"] = list(options.stop)
        if options.seed is not None:
            body["seed"] = options.seed
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = f"{self.base_url}/chat/completions"
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            connection.connect()
            watch.watch(connection.sock)
            connection.request("POST", path, json.dumps(body).encode("utf-8"), headers)
            response = connection.getresponse()
        except ConnectionRefusedError:
            raise ModelError(
                f"cannot reach {url}: connection refused (is the server running?)"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            if watch.stopped_it:
                raise  # generate() tells a cancel from the deadline
            if isinstance(exc, TimeoutError):
                raise ModelError(
                    f"cannot reach {url}: no answer within {self.timeout:g} s"
                ) from None
            raise ModelError(f"cannot reach {url}: {exc}") from None
        if 300 <= response.status < 400:
            where = response.getheader("Location") or "nowhere"
            raise ModelError(
                f"{url} answered HTTP {response.status}, a redirect to {where}; cyclefix follows "
                "no redirect (it would carry the API key along): put the final URL in the model "
                "spec"
            )
        if response.status != 200:
            raise ModelError(f"{url} answered HTTP {response.status}: {_error_detail(response)}")
        return response

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
        first_text_at: float | None = None
        pieces: list[str] = []
        content_chunks = 0
        usage: dict[str, Any] | None = None
        finish_reason: FinishReason = "length"
        url = f"{self.base_url}/chat/completions"
        watch = _Watchdog(cancel, time.monotonic() + self.total_timeout, self.total_timeout)
        connection = self._connect(url)
        try:
            response = self._request(messages, options, connection, watch)
            ended = False  # `until` held: the answer is complete
            for event in _sse_events(response):
                if ended or (cancel is not None and cancel.is_set()):
                    break
                if "error" in event:
                    raise ModelError(f"{url} reported an error: {_one_line(event['error'])}")
                if isinstance(event.get("usage"), dict):
                    usage = event["usage"]
                for choice in event.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content") or ""
                    if text:
                        if first_text_at is None:
                            first_text_at = time.perf_counter()
                        content_chunks += 1
                        pieces.append(text)
                        if on_text is not None:
                            on_text(text)
                        if until is not None and until("".join(pieces)):
                            finish_reason, ended = "stop", True
                            break
                    if choice.get("finish_reason") == "stop":
                        finish_reason = "stop"
                    elif choice.get("finish_reason") == "length":
                        finish_reason = "length"
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # The watchdog's shutdown surfaces as a broken or empty read, or a closed file.
            if not watch.cancelled:
                if watch.stopped_it:
                    raise ModelError(f"{url}: {watch.why}") from None
                if isinstance(exc, TimeoutError):
                    raise ModelError(f"{url} sent nothing for {self.timeout:g} s") from None
                raise ModelError(f"the stream from {url} broke off: {exc}") from None
        finally:
            watch.stop()
            connection.close()
        if watch.stopped_it and not watch.cancelled:
            # A shut-down socket can also read as a clean end of the stream.
            raise ModelError(f"{url}: {watch.why}")
        if cancel is not None and cancel.is_set():
            finish_reason = "cancelled"
        finished = time.perf_counter()
        text = "".join(pieces)
        if usage is not None:
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage.get("completion_tokens") or 0)
        else:
            # No usage from the server: a rough estimate, ~4 characters per prompt token and
            # one token per streamed chunk (servers stream about a token per event).
            prompt_tokens = sum(len(m.content) for m in messages) // 4
            completion_tokens = content_chunks
        return GenerationResult(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            seconds=finished - started,
            prompt_seconds=(first_text_at or finished) - started,
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
        """The chat completions API does not give the logits of a given text."""
        return None

    def close(self) -> None:
        """Nothing to release: each request opens and closes its own connection."""


class _Watchdog:
    """Shuts a connection's socket down on cancel or at the deadline, unblocking any read."""

    def __init__(self, cancel: threading.Event | None, deadline: float, total: float) -> None:
        self._cancel = cancel
        self._deadline = deadline
        self._total = total
        self._sock: socket.socket | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.stopped_it = False

    @property
    def cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    @property
    def why(self) -> str:
        return "cancelled" if self.cancelled else f"did not finish within {self._total:g} s"

    def watch(self, sock: socket.socket | None) -> None:
        """Start watching `sock`; kept here since the connection may drop its own reference."""
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="cyclefix-remote-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(WATCH_INTERVAL):
            if self.cancelled or time.monotonic() >= self._deadline:
                self.stopped_it = True
                if self._sock is not None:
                    # OSError: the server closed it first.
                    with contextlib.suppress(OSError):
                        self._sock.shutdown(socket.SHUT_RDWR)
                return

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


def _sse_events(response: IO[bytes]) -> Iterator[dict[str, Any]]:
    """JSON objects from the `data:` lines of a server-sent event stream, until [DONE]."""
    data_lines: list[str] = []
    for raw in response:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if line.startswith("data:"):
            data_lines.append(line[5:].removeprefix(" "))
            continue
        if line or not data_lines:
            # Comments (": ping"), event names and ids carry nothing we use.
            continue
        data = "\n".join(data_lines)
        data_lines = []
        if data.strip() == "[DONE]":
            return
        yield _parse_event(data)
    if data_lines and "\n".join(data_lines).strip() != "[DONE]":
        yield _parse_event("\n".join(data_lines))


def _parse_event(data: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except json.JSONDecodeError:
        raise ModelError(f"the server sent an unreadable event: {data[:80]!r}") from None
    if not isinstance(event, dict):
        raise ModelError(f"the server sent an unexpected event: {data[:80]!r}")
    return event


def _error_detail(response: http.client.HTTPResponse) -> str:
    try:
        body = response.read(64 * 1024).decode("utf-8", errors="replace")
    except (OSError, http.client.HTTPException):
        body = ""
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError:
        return _one_line(body) or str(response.reason)
    if isinstance(parsed, dict) and "error" in parsed:
        return _one_line(parsed["error"])
    return _one_line(body)


def _one_line(value: object) -> str:
    if isinstance(value, dict):
        value = value.get("message", value)
    text = " ".join(str(value).split())
    return text[:200]
