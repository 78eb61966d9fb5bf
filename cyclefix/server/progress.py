"""One `$/progress` report per job, or nothing when the client cannot show it."""

from __future__ import annotations

import asyncio
import logging
import uuid

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.lsp.server import LanguageServer

logger = logging.getLogger(__name__)

# How long to wait for the client to accept a progress token.
CREATE_TIMEOUT = 5.0


def client_supports_progress(server: LanguageServer) -> bool:
    return bool(get_capability(server.client_capabilities, "window.work_done_progress", False))


class JobProgress:
    """begin / report / end of one job; every call is a no-op once ended or when unsupported."""

    def __init__(self, server: LanguageServer) -> None:
        self._server = server
        self.token: str | None = None
        self._ended = False
        self._last: tuple[str | None, int | None] = (None, None)

    async def begin(self, title: str, message: str | None = None) -> None:
        if not client_supports_progress(self._server):
            return
        token = f"cyclefix-{uuid.uuid4().hex[:12]}"
        try:
            # Shielded: a job cancelled meanwhile must not cancel the request whose answer
            # pygls still expects (it would fail to deliver it and report an error).
            create = asyncio.ensure_future(self._server.work_done_progress.create_async(token))
            await asyncio.wait_for(asyncio.shield(create), CREATE_TIMEOUT)
        except Exception as exc:  # a client that refuses or never answers gets no progress
            logger.info("client refused progress token: %s", exc)
            return
        self.token = token
        self._server.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title=title, message=message, cancellable=True, percentage=None
            ),
        )

    def report(self, message: str, percentage: int | None = None) -> None:
        if self.token is None or self._ended or self._last == (message, percentage):
            return
        self._last = (message, percentage)
        self._server.work_done_progress.report(
            self.token, types.WorkDoneProgressReport(message=message, percentage=percentage)
        )

    def end(self, message: str) -> None:
        if self.token is None or self._ended:
            return
        self._ended = True
        self._server.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
