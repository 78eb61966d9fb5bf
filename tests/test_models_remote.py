"""The OpenAI-compatible backend against a small fake server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cyclefix.models.backend import ChatMessage, GenerationOptions
from cyclefix.models.errors import ModelError
from cyclefix.models.remote import OpenAICompatibleBackend, parse_openai_spec

ASK = (ChatMessage("system", "be brief"), ChatMessage("user", "say hello"))


@dataclass
class FakeServer:
    """What the handler should do next, and what it received."""

    url: str = ""
    reply_pieces: list[str] = field(default_factory=lambda: ["Hel", "lo", " world"])
    usage: dict[str, int] | None = field(
        default_factory=lambda: {"prompt_tokens": 17, "completion_tokens": 3}
    )
    finish_reason: str = "stop"
    piece_delay: float = 0.0
    # When set, it answers every request with this function instead of a stream.
    respond: Callable[[BaseHTTPRequestHandler], None] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def make_handler(state: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.requests.append(json.loads(self.rfile.read(length)))
            state.headers.append(dict(self.headers))
            if self.path != "/v1/chat/completions":
                self.send_error(404, "no such route")
                return
            if state.respond is not None:
                state.respond(self)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                self.wfile.write(b": keep-alive comment\n\n")
                for piece in state.reply_pieces:
                    time.sleep(state.piece_delay)
                    self.event({"choices": [{"index": 0, "delta": {"content": piece}}]})
                self.event(
                    {"choices": [{"index": 0, "delta": {}, "finish_reason": state.finish_reason}]}
                )
                if state.usage is not None:
                    self.event({"choices": [], "usage": state.usage})
                self.wfile.write(b"data: [DONE]\n\n")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def event(self, payload: dict[str, Any]) -> None:
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

    return Handler


@pytest.fixture
def server() -> Iterator[FakeServer]:
    state = FakeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_parse_spec() -> None:
    parsed = parse_openai_spec("openai:http://127.0.0.1:8080/v1/#qwen")
    assert parsed.base_url == "http://127.0.0.1:8080/v1" and parsed.model == "qwen"
    for bad in ("openai:127.0.0.1:8080#qwen", "openai:http://host/v1", "openai:http://h#"):
        with pytest.raises(ModelError, match="expected openai:URL#MODEL"):
            parse_openai_spec(bad)


def test_streams_text_and_reads_usage(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYCLEFIX_API_KEY", "sekrit")
    backend = OpenAICompatibleBackend.from_spec(f"openai:{server.url}#tiny")
    pieces: list[str] = []
    options = GenerationOptions(temperature=0.0, top_p=0.9, max_tokens=50, seed=7, stop=("END",))
    result = backend.generate(ASK, options, on_text=pieces.append)
    assert pieces == ["Hel", "lo", " world"]
    assert result.text == "Hello world"
    assert result.finish_reason == "stop"
    assert (result.prompt_tokens, result.completion_tokens) == (17, 3)
    assert 0 <= result.prompt_seconds <= result.seconds
    request = server.requests[0]
    assert request["model"] == "tiny" and request["stream"] is True
    assert request["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "say hello"},
    ]
    assert (request["temperature"], request["top_p"], request["max_tokens"]) == (0.0, 0.9, 50)
    assert request["seed"] == 7 and request["stop"] == ["END"]
    assert server.headers[0]["Authorization"] == "Bearer sekrit"
    assert backend.name == f"tiny@{server.url}"


def test_without_usage_counts_are_estimated(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CYCLEFIX_API_KEY", raising=False)
    server.usage = None
    server.finish_reason = "length"
    result = OpenAICompatibleBackend(server.url, "m").generate(ASK, GenerationOptions())
    assert result.completion_tokens == 3  # one per streamed chunk
    assert result.prompt_tokens == len("be brief" + "say hello") // 4
    assert result.finish_reason == "length"
    assert "Authorization" not in server.headers[0]


def test_cancel_between_events(server: FakeServer) -> None:
    server.reply_pieces = [f"w{i} " for i in range(100)]
    server.piece_delay = 0.01
    cancel = threading.Event()
    seen: list[str] = []

    def on_text(piece: str) -> None:
        seen.append(piece)
        if len(seen) == 3:
            cancel.set()

    result = OpenAICompatibleBackend(server.url, "m").generate(
        ASK, GenerationOptions(), on_text=on_text, cancel=cancel
    )
    assert result.finish_reason == "cancelled"
    assert result.text == "w0 w1 w2 "


def test_until_ends_the_answer_where_it_is_complete(server: FakeServer) -> None:
    server.reply_pieces = ["a\n", "b\n", "c\n", "d\n"]
    result = OpenAICompatibleBackend(server.url, "m").generate(
        ASK, GenerationOptions(), until=lambda text: text.count("\n") == 2
    )
    assert result.finish_reason == "stop"
    assert result.text == "a\nb\n"


def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OpenAICompatibleBackend(f"http://127.0.0.1:{port}/v1", "m")
    with pytest.raises(ModelError, match="connection refused") as caught:
        backend.generate(ASK, GenerationOptions())
    assert "\n" not in str(caught.value)


def json_error(status: int, message: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        body = json.dumps({"error": {"message": message, "type": "x"}}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def test_http_error_is_one_line_with_the_server_message(server: FakeServer) -> None:
    server.respond = json_error(401, "invalid api key\nplease check")
    with pytest.raises(ModelError, match="HTTP 401: invalid api key please check"):
        OpenAICompatibleBackend(server.url, "m").generate(ASK, GenerationOptions())


def test_wrong_route_is_an_http_error(server: FakeServer) -> None:
    with pytest.raises(ModelError, match="HTTP 404"):
        OpenAICompatibleBackend(server.url + "/extra", "m").generate(ASK, GenerationOptions())


def test_error_event_inside_the_stream(server: FakeServer) -> None:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(b'data: {"error": {"message": "model crashed"}}\n\n')

    server.respond = respond
    with pytest.raises(ModelError, match="reported an error: model crashed"):
        OpenAICompatibleBackend(server.url, "m").generate(ASK, GenerationOptions())


def test_garbage_in_the_stream(server: FakeServer) -> None:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(b"data: {not json\n\n")

    server.respond = respond
    with pytest.raises(ModelError, match="unreadable event"):
        OpenAICompatibleBackend(server.url, "m").generate(ASK, GenerationOptions())


def test_a_silent_server_times_out(server: FakeServer) -> None:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.flush()
        time.sleep(1.0)

    server.respond = respond
    backend = OpenAICompatibleBackend(server.url, "m", timeout=0.3)
    with pytest.raises(ModelError, match=r"sent nothing for 0.3 s|no answer within 0.3 s"):
        backend.generate(ASK, GenerationOptions())


def keep_alive_only(stop: threading.Event) -> Callable[[BaseHTTPRequestHandler], None]:
    """A stream that opens and then sends `: ping` every 50 ms until the test ends."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        try:
            while not stop.wait(0.05):
                handler.wfile.write(b": ping\n\n")
                handler.wfile.flush()
        except OSError:
            pass

    return respond


@pytest.fixture
def end_of_test() -> Iterator[threading.Event]:
    stop = threading.Event()
    yield stop
    stop.set()


def test_cancel_holds_against_a_keep_alive_only_server(
    server: FakeServer, end_of_test: threading.Event
) -> None:
    server.respond = keep_alive_only(end_of_test)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    result = OpenAICompatibleBackend(server.url, "m", timeout=30).generate(
        ASK, GenerationOptions(), cancel=cancel
    )
    assert result.finish_reason == "cancelled"
    assert time.monotonic() - started < 2.0


def test_a_keep_alive_only_server_meets_the_total_deadline(
    server: FakeServer, end_of_test: threading.Event
) -> None:
    server.respond = keep_alive_only(end_of_test)
    backend = OpenAICompatibleBackend(server.url, "m", timeout=30, total_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ModelError, match=r"did not finish within 0.5 s"):
        backend.generate(ASK, GenerationOptions())
    assert time.monotonic() - started < 2.0


def test_cancel_holds_while_the_server_withholds_its_headers(
    server: FakeServer, end_of_test: threading.Event
) -> None:

    def withhold(handler: BaseHTTPRequestHandler) -> None:
        end_of_test.wait(30)

    server.respond = withhold
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    result = OpenAICompatibleBackend(server.url, "m", timeout=30).generate(
        ASK, GenerationOptions(), cancel=cancel
    )
    assert result.finish_reason == "cancelled" and result.text == ""
    assert time.monotonic() - started < 2.0


def test_the_key_never_reaches_the_origin_a_redirect_names(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_elsewhere: list[tuple[str, dict[str, str]]] = []

    class Elsewhere(BaseHTTPRequestHandler):
        """Another origin (same host, other port): records any request of any method."""

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def record(self) -> None:
            seen_elsewhere.append((self.command, dict(self.headers)))
            self.send_error(500)

        do_GET = do_POST = do_PUT = record

    other = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    other.daemon_threads = True
    threading.Thread(target=other.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{other.server_address[1]}/v1/chat/completions"

    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", target)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server.respond = redirect
    monkeypatch.setenv("CYCLEFIX_API_KEY", "sekrit")
    try:
        with pytest.raises(ModelError, match=r"HTTP 302, a redirect to .* follows no redirect"):
            OpenAICompatibleBackend(server.url, "m").generate(ASK, GenerationOptions())
    finally:
        other.shutdown()
        other.server_close()
    assert server.headers[0]["Authorization"] == "Bearer sekrit"
    assert seen_elsewhere == []
