"""Where the server's logs go: a file in the user's log dir, and the client's log window."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import sys
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"


def default_log_file() -> Path:
    import platformdirs

    return platformdirs.user_log_path("cyclefix") / "server.log"


def setup_file_logging(path: Path, level: int) -> Path | None:
    """Log to `path` (rotated at 2 MB); None when it cannot be opened, then stderr only."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    # pygls logs every message it sends at INFO; keep its warnings only.
    logging.getLogger("pygls").setLevel(logging.WARNING)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=2, encoding="utf-8"
        )
        opened: Path | None = path
    except OSError as exc:
        print(f"cyclefix: cannot open log file {path}: {exc}; logging to stderr", file=sys.stderr)
        handler = logging.StreamHandler(sys.stderr)
        opened = None
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(level)
    root.addHandler(handler)
    return opened


class ClientLogHandler(logging.Handler):
    """Forwards warnings of cyclefix's other parts to the client's `window/logMessage`.

    Records from the server itself are skipped: it sends its own messages directly.
    """

    def __init__(self, server: LanguageServer, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(level=logging.WARNING)
        self._server = server
        self._loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("cyclefix.server", "pygls")):
            return
        kind = (
            types.MessageType.Error
            if record.levelno >= logging.ERROR
            else types.MessageType.Warning
        )
        params = types.LogMessageParams(type=kind, message=f"{record.name}: {record.getMessage()}")
        # RuntimeError: the loop has closed, the server is exiting.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._server.window_log_message, params)
