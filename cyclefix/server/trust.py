"""Workspace trust in the editor: a project's guarded settings wait for window/showMessageRequest.

Until the user answers Trust, the setting falls back to the default (with a warning, once);
"Don't trust" is remembered for the session, Trust for good (cyclefix.trust.TrustStore).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from lsprotocol import types

from cyclefix.trust import TrustRequest, TrustStore

logger = logging.getLogger(__name__)

TRUST = "Trust"
DONT_TRUST = "Don't trust"

# Sends the request to the client; the action the user picked, or None.
AskClient = Callable[
    [types.ShowMessageRequestParams], Coroutine[Any, Any, types.MessageActionItem | None]
]


class WorkspaceTrust:
    """Asks the user (once a session) to trust a project's guarded settings, and remembers a yes."""

    def __init__(
        self,
        ask_client: AskClient,
        warn: Callable[[str], None],
        log: Callable[[str], None],
        store: TrustStore | None = None,
    ) -> None:
        self.store = store if store is not None else TrustStore()
        self._ask_client = ask_client
        self._warn = warn
        self._log = log
        # Asked this session (answer pending, or declined): never asked twice.
        self._asked: set[TrustRequest] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def ask(self, request: TrustRequest) -> None:
        """Warn once that `request` waits for trust, and ask the user in a dialog."""
        if request in self._asked:
            return
        self._asked.add(request)
        self._warn(
            f"{request.root / 'pyproject.toml'} sets {request.setting} = {request.value!r} "
            f"({request.describe()}): not used until you trust it; using the default meanwhile"
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (a unit test): the warning is all
        task = loop.create_task(self._dialog(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dialog(self, request: TrustRequest) -> None:
        params = types.ShowMessageRequestParams(
            type=types.MessageType.Warning,
            message=f"cyclefix: {request.question()}",
            actions=[
                types.MessageActionItem(title=TRUST),
                types.MessageActionItem(title=DONT_TRUST),
            ],
        )
        try:
            answer = await self._ask_client(params)
        except Exception as exc:  # the client refused or does not support the request
            logger.info("trust request for %s failed: %s", request, exc)
            return
        if answer is None or answer.title != TRUST:
            self._log(f"not trusted: {request.setting} = {request.value!r} of {request.root}")
            return
        try:
            self.store.trust(request.root, request.setting, request.value)
        except OSError as exc:
            self._warn(f"cannot remember the trust in {self.store.path}: {exc}")
            return
        self._log(
            f"trusted: {request.setting} = {request.value!r} of {request.root}; "
            "used from the next run"
        )
