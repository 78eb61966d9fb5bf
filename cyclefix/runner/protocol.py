"""What the runner and its pytest plugin say to each other: environment names, records, signing.

The plugin runs in the user's interpreter from a private folder that holds copies of this
module, the plugin and the confinement module, so this module is standard library only and
runs on Python 3.9 (the oldest interpreter a project may bring): annotations stay strings.

Records travel as lines over a pipe whose write end the test process inherits; each line is
``<hex HMAC-SHA256> <json>``, the MAC taken over the record's sequence number and its JSON with
a per-process key. The plugin reads that key from a second pipe when it is imported, before
pytest loads any project code, and closes the pipe: the key is never in the environment, on
disk, or in a module global. Code under test can write to the results pipe (it may find the
fd) but cannot sign, so a forged or interleaved line breaks the chain and the parent stops
trusting the process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

# The module names of the private copies in the test process's folder.
PLUGIN_MODULE = "_cyclefix_pytest_plugin"
PROTOCOL_MODULE = "_cyclefix_protocol"
CONFINE_MODULE = "_cyclefix_confine"
TRACE_MODULE = "_cyclefix_trace"
WARM_MODULE = "_cyclefix_warm"
# Every runner file the test process runs, and its private module name there.
PRIVATE_COPIES = (
    ("plugin.py", PLUGIN_MODULE),
    ("protocol.py", PROTOCOL_MODULE),
    ("confine.py", CONFINE_MODULE),
    ("seccomp.py", "_cyclefix_seccomp"),
    ("trace.py", TRACE_MODULE),
    ("inert_repr.py", "_cyclefix_inert_repr"),
    ("failures.py", "_cyclefix_failures"),
    ("assertions.py", "_cyclefix_assertions"),
    ("testfiles.py", "_cyclefix_testfiles"),
    ("integrity.py", "_cyclefix_integrity"),
    ("answer_guard.py", "_cyclefix_answer_guard"),
    ("watchdog.py", "_cyclefix_watchdog"),
    ("decoy.py", "_cyclefix_decoy"),
    ("warm_worker.py", WARM_MODULE),
)

# Environment of the test process (names only: every value is public to the code under test).
ENV_RESULTS_FD = "CYCLEFIX_RESULTS_FD"
ENV_KEY_FD = "CYCLEFIX_KEY_FD"
ENV_ROOT = "CYCLEFIX_ROOT"
ENV_TIMEOUT = "CYCLEFIX_TEST_TIMEOUT"
ENV_GRACE = "CYCLEFIX_TEST_GRACE"
ENV_COLLECT_TIMEOUT = "CYCLEFIX_COLLECT_TIMEOUT"
ENV_MAX_HANGS = "CYCLEFIX_MAX_HANGS"
ENV_CONFINE = "CYCLEFIX_CONFINE"
# "1": record which project lines each test executed (setup and call), in its record.
ENV_TRACE = "CYCLEFIX_TRACE"
# "1" in a candidate's run: a skip raised by the code under test is an error there.
ENV_CANDIDATE = "CYCLEFIX_CANDIDATE"
# In a candidate's run: the lines its answer wrote, {path: [[first, last]]} (answer_guard.py).
ENV_ANSWER_LINES = "CYCLEFIX_ANSWER_LINES"
# A warm worker's environment (warm.py): its control socket, the user's project.
ENV_WARM_CONTROL_FD = "CYCLEFIX_WARM_FD"
ENV_WARM_PROJECT = "CYCLEFIX_WARM_PROJECT"
FIRST_OPTION = "--cyclefix-first"
# Node ids a rerun skips, matched exactly (pytest's --deselect takes prefixes: test_a, test_ab).
SKIP_OPTION = "--cyclefix-skip"
# With it, the session ends at the first test that does not pass, unless its node id is one
# of these (failing before: a candidate's run goes on to see them all).
MAY_FAIL_OPTION = "--cyclefix-may-fail"
WATCHDOG_EXIT_CODE = 86
# The launcher exits with this when it cannot confine the process as asked.
CONFINE_EXIT_CODE = 87
TEARDOWN_ALLOWANCE = 1.0

KEY_BYTES = 32
_MAC_HEX = 2 * hashlib.sha256().digest_size


# Records, one per event, as the plugin writes them (JSON objects; see plugin.py for when).


class Frame(TypedDict):
    """A traceback frame in a project non-test file."""

    path: str
    line: int
    function: str
    source: str


class Details(TypedDict, total=False):
    """Why a test failed (the optional fields of TestCaseResult), as the plugin found them."""

    path: str | None
    line: int | None
    exc_type: str | None
    exc_message: str | None
    assert_source: str | None
    assert_explanation: str | None
    input: str | None
    expected: str | None
    actual: str | None
    test_source: str | None
    line_source: str | None
    project_frames: list[Frame]
    # Where project code raised the exceptions the failing statement inspects (caught by the
    # test: `ctx.exception`, `excinfo.value`).
    caught_frames: list[Frame]
    # The name a failing test calls -> [project file, the function's own name].
    callees: dict[str, list[str]]
    # The plugin's own analysis failed (repr of its exception); the rest is what it had.
    plugin_error: str


class _ProbedCallRequired(TypedDict):
    call: str  # e.g. "percent_of(125, 10)"


class ProbedCallRecord(_ProbedCallRequired, total=False):
    """One call a failing test made to a project function (trace.py's probe), rendered."""

    returned: str | None
    raised: str | None


class _ExecutedRequired(TypedDict):
    path: str
    qualname: str
    line: int
    lines: list[int]


class ExecutedRecord(_ExecutedRequired, total=False):
    """A project function a test executed (traced runs), with its first calls when it failed."""

    calls: list[ProbedCallRecord]


class _CaseRecordRequired(TypedDict):
    event: Literal["test"]
    nodeid: str
    outcome: Literal["passed", "failed", "error", "skipped", "timeout"]
    duration: float
    stdout: str
    stderr: str


class CaseRecord(_CaseRecordRequired, Details, total=False):
    """A test ended."""

    # time.monotonic() when the test's teardown ended.
    t: float
    executed: list[ExecutedRecord]
    # The test replaced the tracer for a while: `executed` is incomplete.
    trace_incomplete: bool


class CollectStartRecord(TypedDict):
    event: Literal["collect_start"]  # a test module is being imported
    nodeid: str


class StartRecord(TypedDict):
    event: Literal["start"]  # a test begins
    nodeid: str


class _CollectErrorRequired(TypedDict):
    event: Literal["collect_error"]
    nodeid: str
    message: str


class CollectErrorRecord(_CollectErrorRequired, total=False):
    """A collector failed (a module that does not import); where, and project frames."""

    path: str | None
    line: int | None
    exc_type: str | None
    project_frames: list[Frame]


class SessionStartRecord(TypedDict):
    event: Literal["session_start"]  # pytest's session begins (interpreter and imports done)
    t: float  # the test process's time.monotonic()


class CollectedRecord(TypedDict):
    event: Literal["collected"]  # the final selection, in run order
    nodeids: list[str]
    t: float  # time.monotonic() when collection finished
    decoy: bool  # a decoy test (runner.decoy) runs after them


class WatchdogRecord(TypedDict):
    event: Literal["watchdog"]  # the test ignored its timeout; the process exits now
    nodeid: str
    seconds: float


class TraceRecord(TypedDict):
    event: Literal["trace"]  # a traced run was asked for but is impossible here
    active: bool
    reason: str


# A decoy record's outcome when pytest reported the decoy as it must: failed by its own exception.
DECOY_FAILED = "failed"


class DecoyRecord(TypedDict):
    event: Literal["decoy"]  # the decoy test ended: what pytest reported for it
    outcome: str


class SessionFinishRecord(TypedDict):
    event: Literal["session_finish"]
    exitstatus: int


def _mac(key_mac: Any, sequence: int, payload: bytes) -> str:
    mac = key_mac.copy()
    mac.update(sequence.to_bytes(8, "big"))
    mac.update(payload)
    return str(mac.hexdigest())


class RecordSigner:
    """Signs the plugin's records in order; holds the key only as HMAC state, not as bytes."""

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._sequence = 0

    def line(self, record: Mapping[str, object]) -> bytes:
        payload = json.dumps(record, ensure_ascii=True).encode("ascii")
        signed = _mac(self._mac, self._sequence, payload).encode("ascii") + b" " + payload + b"\n"
        self._sequence += 1
        return signed


class ForgedRecord(Exception):
    """A line that the plugin did not sign, or not in this place of the stream."""


class RecordVerifier:
    """The parent's side: accepts lines only in the order they were signed."""

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._sequence = 0

    def record(self, line: bytes) -> dict[str, Any]:
        """The record of one signed line (without its newline); raises ForgedRecord."""
        mac, _, payload = line.partition(b" ")
        if len(mac) != _MAC_HEX:
            raise ForgedRecord(f"line {self._sequence} is not signed")
        expected = _mac(self._mac, self._sequence, payload).encode("ascii")
        if not hmac.compare_digest(mac, expected):
            raise ForgedRecord(f"line {self._sequence} has a wrong signature")
        try:
            record = json.loads(payload)
        except (ValueError, RecursionError) as exc:  # nested past the parser's depth
            raise ForgedRecord(f"line {self._sequence} is not JSON") from exc
        if not isinstance(record, dict) or not isinstance(record.get("event"), str):
            raise ForgedRecord(f"line {self._sequence} is not a record")
        self._sequence += 1
        return record


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def read_key(fd: int) -> bytes:
    """The whole key from the pipe the parent filled and closed; closes our end."""
    try:
        chunks = []
        while True:
            chunk = os.read(fd, KEY_BYTES)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)
