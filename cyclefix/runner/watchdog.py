"""The plugin's last resort: ends the test process when a test or an import ignores its timeout.

Shipped next to the pytest plugin (as ``_cyclefix_watchdog``), so it may import nothing but the
standard library and its siblings, and must run on Python 3.9.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cyclefix.runner import protocol
else:
    try:  # the runner's private copy, in the test process
        import _cyclefix_protocol as protocol
    except ImportError:
        from cyclefix.runner import protocol


class RecordWriter(Protocol):
    def write(self, record: Mapping[str, object]) -> None: ...


class Watchdog:
    """Ends the process when a test or import ignores its timeout (signals blocked or swallowed).

    A daemon thread sleeps until the running phase's hard deadline; past it, it writes a
    ``watchdog`` record naming the phase and exits the process."""

    def __init__(self, writer: RecordWriter, timeout: float) -> None:
        self._writer = writer
        self._timeout = timeout
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._idle = False
        self.label = ""

    def start(self) -> None:
        threading.Thread(target=self._run, name="cyclefix-watchdog", daemon=True).start()

    def set(self, deadline: float | None, label: str) -> None:
        with self._cond:
            self._deadline = deadline
            self.label = label
            # Wake the thread only when it sleeps with no deadline at all: a later deadline it
            # finds by itself when the earlier one passes (no wake-up per test).
            if deadline is not None and self._idle:
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                if self._deadline is None:
                    self._idle = True
                    self._cond.wait()
                    self._idle = False
                    continue
                delay = self._deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                label = self.label
                break
        try:
            self._writer.write({"event": "watchdog", "nodeid": label, "seconds": self._timeout})
        finally:
            os._exit(protocol.WATCHDOG_EXIT_CODE)
