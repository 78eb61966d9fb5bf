"""Hostile code against the runner: what a model's candidate (or a test) tries, and what it gets.

Candidates come from the scripted backend (no model). Each probe asserts the concrete outcome:
trees hashed before and after are unchanged, forged results are `tests_failed`, no host
interface or namespace is reachable, no secret is in the environment, no TCP connection leaves.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import warm_support
from project_support import make_project

import cyclefix.runner.run as run_module
from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, fix
from cyclefix.runner import (
    Confinement,
    SandboxLimits,
    TestRunResult,
    run_tests,
    scratch_copy,
    seccomp,
)
from cyclefix.runner import confine as confine_module
from cyclefix.runner.isolation import detect_isolation, read_only_mounts
from cyclefix.runner.run import UNTRUSTED_NODEID
from cyclefix.runner.warm import WarmWorkers

# Each candidate-run probe below runs fresh and forked from a warm worker.
workers = warm_support.workers
pytestmark = pytest.mark.usefixtures("runtime_defences_alone")

CONFIG = RefineConfig(rounds=1, budget_seconds=120, extend_to_budget=False, per_test_timeout=2.0)
LIMITS = SandboxLimits(per_test_timeout=2.0, run_timeout=60.0)
TESTS = """\
from calc import add


def test_small():
    assert add(1, 2) == 3


def test_negative():
    assert add(-1, -2) == -3
"""

needs_landlock = pytest.mark.skipif(
    confine_module.landlock_abi() < 1, reason="this kernel has no Landlock"
)
needs_network_namespace = pytest.mark.skipif(
    not detect_isolation().network_isolated, reason="no network namespace allowed here"
)


CALC_OK = "def add(a, b):\n    return a + b\n"


def tree_digest(root: Path) -> str:
    """One hash of every path, file content and mode under `root`."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
        digest.update(str(path.lstat().st_mode).encode())
    return digest.hexdigest()


def candidate(body: str, returns: str = "a + b") -> str:
    """A reply whose `add` runs `body` (hostile code) before returning `returns`."""
    code = "def add(a, b):\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ")
    return f"```python\n{code}\n    return {returns}\n```\n"


# A wrong result: only the hostile code could make the tests pass (and no part of the answer
# alone is a fix: refine.partial).
WRONG = "a * b"


def run_confined(
    root: Path, tests: tuple[str, ...] = (), warm: WarmWorkers | None = None
) -> TestRunResult:
    """The project's tests as a candidate's run: on a scratch copy, confined (forked from a
    warm worker when `warm` is given)."""
    with scratch_copy(root) as copy:
        return run_tests(
            copy,
            tests,
            limits=LIMITS,
            autoload_plugins=False,
            confinement=Confinement(root),
            warm=warm,
        )


@pytest.fixture
def calc(tmp_path: Path) -> Path:
    return make_project(
        tmp_path / "calc", {"calc.py": "def add(a, b):\n    return a - b\n", "test_calc.py": TESTS}
    )


@pytest.fixture
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's home as cyclefix sees it (hashed before and after; never the real one)."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "settings").write_text("mine\n")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def without_namespaces(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Runs without pid/net/mount namespaces: Landlock alone must hold."""
    monkeypatch.setenv("CYCLEFIX_NO_NAMESPACES", "1")
    detect_isolation.cache_clear()
    yield
    monkeypatch.delenv("CYCLEFIX_NO_NAMESPACES")
    detect_isolation.cache_clear()


# ---------------------------------------------------------------- writes


@needs_landlock
def test_a_candidate_writes_nothing_outside_its_scratch_copy(
    calc: Path, fake_home: Path, tmp_path: Path, workers: WarmWorkers | None
) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("keep\n")
    before = {p: tree_digest(p) for p in (calc, fake_home, canary)}
    targets = [calc / "MARKER", fake_home / "MARKER", canary / "MARKER", canary / "keep.txt"]
    hostile = candidate(
        f"""
        import os
        refused = 0
        for target in {[str(t) for t in targets]!r}:
            try:
                with open(target, "w") as handle:
                    handle.write("owned")
            except OSError:
                refused += 1
        for victim in ({str(calc / "calc.py")!r}, {str(canary / "keep.txt")!r}):
            try:
                os.remove(victim)
            except OSError:
                refused += 1
        with open(os.path.expanduser("~/MARKER"), "w") as handle:  # the private home: allowed
            handle.write("fine")
        if refused != {len(targets) + 2}:
            return a - b
        """
    )
    result = fix(calc, ScriptedBackend([hostile]), config=CONFIG, warm=workers)
    # Every write was refused (or the candidate would have failed), and nothing changed.
    assert result.status == "fixed", [a.detail for r in result.rounds for a in r.attempts]
    assert {p: tree_digest(p) for p in before} == before


@needs_landlock
def test_checking_a_copy_with_a_confinement_keeps_writes_in_that_copy(
    calc: Path, tmp_path: Path
) -> None:
    # What the bench does to score a model's code on hidden tests: check() on a copy.
    from cyclefix.refine import check

    canary = tmp_path / "canary"
    canary.mkdir()
    copy = tmp_path / "score"
    make_project(
        copy,
        {"calc.py": f"open({str(canary / 'MARKER')!r}, 'w')\n" + CALC_OK, "test_calc.py": TESTS},
    )
    before = tree_digest(canary)
    run = check(copy, config=CONFIG, confinement=Confinement(calc))
    assert run.collection_errors, "the write at import should have been refused"
    assert tree_digest(canary) == before
    unconfined = check(copy, config=CONFIG)
    assert unconfined.all_passed and (canary / "MARKER").exists()  # the probe itself works


@needs_landlock
def test_landlock_alone_keeps_writes_in_the_copy_without_namespaces(
    calc: Path, tmp_path: Path, without_namespaces: None
) -> None:
    (calc / "test_escape.py").write_text(
        "import pytest\n\n"
        "def test_write_outside_is_refused():\n"
        f"    with pytest.raises(PermissionError):\n"
        f"        open({str(tmp_path / 'outside')!r}, 'w')\n\n"
        "def test_writes_inside_work(tmp_path):\n"
        "    (tmp_path / 'x').write_text('x')\n"
        "    open('in-the-copy.txt', 'w').write('x')\n"
    )
    run = run_confined(calc, ("test_escape.py",))
    assert [t.outcome for t in run.tests] == ["passed", "passed"], run.output_tail
    assert not (tmp_path / "outside").exists()


needs_read_only_mounts = pytest.mark.skipif(
    not read_only_mounts(detect_isolation()),
    reason="no read-only mounts here (mount namespace, Linux 5.12+)",
)
METADATA_PROBE = """\
import os

import pytest


@pytest.mark.parametrize("victim", {victims!r})
def test_metadata_outside_is_refused(victim):
    with pytest.raises(OSError):
        os.chmod(victim, 0o777)
    with pytest.raises(OSError):
        os.utime(victim, (0, 0))


def test_metadata_inside_changes(tmp_path):
    os.chmod("calc.py", 0o600)
    os.utime("calc.py", (0, 0))
    (tmp_path / "x").write_text("x")
    os.chmod(tmp_path / "x", 0o600)
"""


@needs_read_only_mounts
def test_a_candidate_changes_no_permission_or_time_outside_its_copy(
    calc: Path, tmp_path: Path, workers: WarmWorkers | None
) -> None:
    # Landlock covers no metadata; red-team pass 4 changed modes and times outside the copy.
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    # A warm worker's mounts stay writable under the temp folder (its runs' copies live
    # there), but for your project itself.
    victims = [calc / "calc.py"] + ([outside] if workers is None else [])
    (calc / "test_meta.py").write_text(METADATA_PROBE.format(victims=[str(v) for v in victims]))
    before = {v: (v.stat().st_mode, v.stat().st_mtime_ns) for v in victims}
    run = run_confined(calc, ("test_meta.py",), warm=workers)
    assert run.tests and all(t.outcome == "passed" for t in run.tests), run.output_tail
    assert {v: (v.stat().st_mode, v.stat().st_mtime_ns) for v in victims} == before


def test_read_only_mounts_are_refused_in_the_runner_s_own_mount_namespace(tmp_path: Path) -> None:
    # A plan sent where no `unshare --mount` made a namespace must not touch the host's mounts.
    own = os.readlink("/proc/self/ns/mnt")
    code = (
        "from cyclefix.runner.confine import ConfinePlan, ConfinementError, apply\n"
        f"plan = ConfinePlan(writable=({str(tmp_path)!r},), drop_capabilities=False, "
        f"read_only_elsewhere=True, host_mounts={own!r})\n"
        "try:\n    apply(plan)\nexcept ConfinementError as exc:\n    print(exc)\n"
    )
    before = Path("/proc/self/mountinfo").read_text()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "outside a private mount namespace" in done.stdout
    assert Path("/proc/self/mountinfo").read_text() == before


@needs_read_only_mounts
def test_a_candidate_reaches_no_host_service_through_a_unix_socket(
    calc: Path, workers: WarmWorkers | None
) -> None:
    # No Landlock right covers connecting to a pathname socket: /run is covered instead.
    if not os.access(confine_module.HOST_SOCKETS, os.W_OK):
        pytest.skip(f"cannot listen in {confine_module.HOST_SOCKETS} here")
    path = f"{confine_module.HOST_SOCKETS}/cyclefix-test-{os.getpid()}.sock"
    with socket.socket(socket.AF_UNIX) as service:
        service.bind(path)
        service.listen(1)
        try:
            (calc / "test_service.py").write_text(
                "import os, socket\n\nimport pytest\n\n"
                "def test_host_services_are_out_of_reach():\n"
                f"    assert not os.path.exists({path!r})\n"
                "    with pytest.raises(OSError):\n"
                f"        socket.socket(socket.AF_UNIX).connect({path!r})\n"
            )
            run = run_confined(calc, ("test_service.py",), warm=workers)
        finally:
            os.remove(path)
    assert [t.outcome for t in run.tests] == ["passed"], run.output_tail


needs_seccomp = pytest.mark.skipif(not seccomp.supported(), reason="no seccomp filter here")

# A test that reaches a listening unix socket outside the copy from a thread (no line of an
# answer on its stack), and also tries the other ways to one.
SOCKET_FROM_A_THREAD = """
import socket, threading


def test_a_service_outside_is_out_of_reach_from_a_thread():
    errors = []

    def connect():
        try:
            with socket.socket(socket.AF_UNIX) as client:
                client.connect({path!r})
                client.sendall(b"escaped")
        except OSError as exc:
            errors.append(exc)

    thread = threading.Thread(target=connect)
    thread.start()
    thread.join()
    assert [type(e) for e in errors] == [PermissionError]


def test_socketpairs_still_work():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"


def test_a_datagram_pair_that_could_send_to_any_path_is_refused():
    try:
        socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    except PermissionError:
        return
    raise AssertionError("a datagram unix socket was made")


def test_no_new_namespace_is_made():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.unshare(0x10000000) == -1  # CLONE_NEWUSER
    assert ctypes.get_errno() == 1  # EPERM


def test_the_hosts_keyrings_are_out_of_reach():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    number = {{"x86_64": 248, "aarch64": 217}}[__import__("platform").machine()]  # add_key
    key = libc.syscall(number, b"user", b"cyclefix-escaped", b"x", 1, -4)  # the user keyring
    assert key == -1 and ctypes.get_errno() == 1


def test_a_loop_device_takes_no_request():
    import fcntl, os
    fd = os.open("/dev/null", os.O_RDONLY)  # any device: the filter reads only the request
    try:
        fcntl.ioctl(fd, 0x4C80, 77)  # LOOP_CTL_ADD
    except PermissionError:
        return
    except OSError as exc:
        raise AssertionError(f"the request reached the device: {{exc!r}}")
    finally:
        os.close(fd)
    raise AssertionError("LOOP_CTL_ADD was taken")


def test_other_ioctls_still_work():
    import fcntl, os, struct, termios
    read, write = os.pipe()
    os.write(write, b"abc")
    waiting = fcntl.ioctl(read, termios.FIONREAD, struct.pack("i", 0))
    assert struct.unpack("i", waiting)[0] == 3
"""


@needs_seccomp
def test_a_candidate_opens_no_unix_socket_and_no_namespace_whatever_runs_it(
    calc: Path, tmp_path: Path, workers: WarmWorkers | None
) -> None:
    path = str(tmp_path / "service.sock")  # outside /run: Landlock alone would let it through
    with socket.socket(socket.AF_UNIX) as service:
        service.bind(path)
        service.listen(1)
        service.settimeout(0.1)
        (calc / "test_service.py").write_text(SOCKET_FROM_A_THREAD.format(path=path))
        run = run_confined(calc, ("test_service.py",), warm=workers)
        with pytest.raises(TimeoutError):
            service.accept()
    assert [t.outcome for t in run.tests] == ["passed"] * 7, run.output_tail


# ---------------------------------------------------------------- forged results


FORGE_RECORDS = """
import json, os
records = [
    {"event": "collected", "nodeids": ["test_calc.py::test_small", "test_calc.py::test_negative"]},
    {"event": "test", "nodeid": "test_calc.py::test_small", "outcome": "passed", "duration": 0.0,
     "stdout": "", "stderr": ""},
    {"event": "test", "nodeid": "test_calc.py::test_negative", "outcome": "passed",
     "duration": 0.0, "stdout": "", "stderr": ""},
    {"event": "session_finish", "exitstatus": 0},
]
for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
    for record in records:
        line = json.dumps(record)
        for text in (line, "0" * 64 + " " + line):
            try:
                os.write(fd, (text + "\\n").encode())
            except OSError:
                pass
legacy = os.environ.get("CYCLEFIX_RESULTS")
if legacy:
    with open(legacy, "a") as handle:
        handle.write("\\n".join(json.dumps(r) for r in records) + "\\n")
os._exit(0)
"""


@pytest.mark.parametrize(
    "body", [FORGE_RECORDS, "import os\nos._exit(0)"], ids=["forged-records", "early-exit-0"]
)
def test_forged_records_and_an_early_exit_are_tests_failed_and_never_applied(
    calc: Path, body: str
) -> None:
    before = tree_digest(calc)
    result = fix(calc, ScriptedBackend([candidate(body, WRONG)]), config=CONFIG)
    verdicts = [a.verdict for a in result.attempts]
    assert result.status == "not_fixed", verdicts
    assert "tests_failed" in verdicts and "passed" not in verdicts, verdicts
    assert result.diff == ""
    assert tree_digest(calc) == before


@pytest.mark.parametrize(
    "body",
    ["import pytest\npytest.skip('not today')", "import pytest\npytest.xfail('later')",
     "import unittest\nraise unittest.SkipTest('no')"],
    ids=["skip", "xfail", "unittest-skip"],
)  # fmt: skip
def test_a_candidate_that_skips_the_tests_is_tests_failed(
    calc: Path, body: str, workers: WarmWorkers | None
) -> None:
    result = fix(calc, ScriptedBackend([candidate(body, WRONG)]), config=CONFIG, warm=workers)
    verdicts = [a.verdict for r in result.rounds for a in r.attempts]
    assert result.status == "not_fixed" and "tests_failed" in verdicts, verdicts
    assert "passed" not in verdicts
    final = result.rounds[0].attempts[0]
    assert "skipped the test" in final.feedback, final.feedback


def test_a_test_that_skips_itself_still_skips_in_a_candidate_run(
    calc: Path, workers: WarmWorkers | None
) -> None:
    (calc / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (calc / "test_skips.py").write_text(
        "import pytest\n\ndef test_skips():\n    pytest.skip('not on this machine')\n"
    )
    run = run_confined(calc, warm=workers)
    assert run.all_passed, [(t.nodeid, t.outcome, t.exc_message) for t in run.tests]
    assert [t.outcome for t in run.tests if t.nodeid.endswith("test_skips")] == ["skipped"]


def test_a_test_marked_xfail_whose_code_raises_stays_expected_under_a_correct_fix(
    calc: Path, workers: WarmWorkers | None
) -> None:
    (calc / "todo.py").write_text("def later():\n    raise NotImplementedError\n")
    (calc / "test_todo.py").write_text(
        "import pytest\nfrom todo import later\n\n\n"
        "@pytest.mark.xfail(reason='not written yet')\ndef test_later():\n    later()\n"
    )
    result = fix(calc, ScriptedBackend([f"```python\n{CALC_OK}```\n"]), config=CONFIG, warm=workers)
    assert result.status == "fixed", [a.feedback for r in result.rounds for a in r.attempts]


def test_a_candidate_that_raises_xfail_inside_an_xfail_marked_test_is_refused(
    calc: Path, workers: WarmWorkers | None
) -> None:
    (calc / "calc.py").write_text("def add(a, b):\n    import pytest\n    pytest.xfail('x')\n")
    (calc / "test_calc.py").write_text(
        "import pytest\nfrom calc import add\n\n\n"
        "@pytest.mark.xfail(reason='flaky')\ndef test_add():\n    assert add(1, 2) == 3\n"
    )
    run = run_confined(calc, warm=workers)
    assert not run.all_passed
    assert "skipped the test" in (run.tests[0].exc_message or ""), run.tests


# Marks every collected test xfail from inside the first test, so a later failing assert in a
# test file (no project frame in its traceback) would read as expected.
MARK_ALL_XFAIL = """
import gc
import pytest
for obj in gc.get_objects():
    if type(obj).__name__ == "Function" and hasattr(obj, "add_marker"):
        obj.add_marker(pytest.mark.xfail(reason="hostile"))
"""


@pytest.mark.usefixtures("without_answer_guard")
def test_a_candidate_that_gets_a_failing_test_marked_xfail_is_not_a_fix(
    calc: Path, workers: WarmWorkers | None
) -> None:
    reply = candidate(MARK_ALL_XFAIL, "a + b if (a, b) == (1, 2) else a * b")
    result = fix(calc, ScriptedBackend([reply]), config=CONFIG, warm=workers)
    verdicts = [a.verdict for r in result.rounds for a in r.attempts]
    assert result.status == "not_fixed" and "passed" not in verdicts, verdicts
    assert "skipped with this candidate" in result.rounds[0].attempts[0].feedback


def test_unsigned_lines_make_the_run_fail_whatever_they_say(
    calc: Path, workers: WarmWorkers | None
) -> None:
    (calc / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (calc / "test_forge.py").write_text(
        "def test_forges():\n" + textwrap.indent(FORGE_RECORDS.replace("os._exit(0)", ""), "    ")
    )
    run = run_confined(calc, warm=workers)
    assert not run.all_passed
    untrusted = [t for t in run.tests if t.nodeid == UNTRUSTED_NODEID]
    assert untrusted and untrusted[0].exc_type == "UntrustedResults"
    assert "forged" in (untrusted[0].exc_message or "")


FLOOD = """\
import os

def test_floods():
    chunk = b"x" * 65536
    for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
        if fd > 2:
            try:
                for _ in range(48):
                    os.write(fd, chunk)
            except OSError:
                pass
"""


def test_a_line_without_end_past_the_record_bound_is_untrusted_not_kept(
    calc: Path, workers: WarmWorkers | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_module, "MAX_RECORD_BYTES", 1 << 20)
    (calc / "calc.py").write_text(CALC_OK)
    (calc / "test_flood.py").write_text(FLOOD)
    run = run_confined(calc, warm=workers)
    assert not run.all_passed
    untrusted = [t for t in run.tests if t.nodeid == UNTRUSTED_NODEID]
    assert untrusted and "a line over 1048576 B" in (untrusted[0].exc_message or "")


# Test code holding the plugin's signer, as code under test can: what it signs is believed
# only as far as a plugin could have written it (red-team pass 4).
SIGNED = """\
import os, sys

def test_signs():
    channel = sys.modules["_cyclefix_pytest_plugin"]._channel
    def send(record):
        os.write(channel._fd, channel._signer.line(record))
    {body}
"""


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ('send({"event": "test", "nodeid": "x::y", "outcome": "passed", "duration": 10**400})',
         "not collected"),
        ('send({"event": "session_finish", "exitstatus": 0})', "after its session ended"),
        ('for i in range(40):\n        send({"event": "collect_start", "nodeid": "n" * 65536})',
         "B of records"),
    ],
    ids=["a-test-never-collected", "records-after-the-end", "flood-of-records"],
)  # fmt: skip
def test_what_a_holder_of_the_signer_sends_past_the_plugin_s_bounds_is_untrusted(
    calc: Path, workers: WarmWorkers | None, monkeypatch: pytest.MonkeyPatch, body: str, why: str
) -> None:
    monkeypatch.setattr(run_module, "MAX_PROCESS_BYTES", 1 << 20)
    (calc / "calc.py").write_text(CALC_OK)
    (calc / "test_signs.py").write_text(SIGNED.format(body=body))
    run = run_confined(calc, warm=workers)
    assert not run.all_passed
    untrusted = [t for t in run.tests if t.nodeid == UNTRUSTED_NODEID]
    assert untrusted and why in (untrusted[0].exc_message or ""), run.notes


# The project's own helper (so no screen reads it), called by an answer at import: pytest's
# `-k` is set so that only the test the wrong `add` passes is collected (red-team pass 4).
DESELECTS = """\
import sys


def _only_zero():
    for finder in sys.meta_path:
        config = getattr(finder, "config", None)
        if config is not None:
            config.option.keyword = "zero"


def add(a, b):
    return a - b
"""


# Code run from a string, which names nothing the answer screen reads (red-team pass 5 ran it
# through timeit and typing's annotations): it finds the plugin and signs "passed" records.
FORGE = """
import gc, os, time
p = None
for o in gc.get_objects():
    if type(o).__name__ == "CyclefixPlugin" and hasattr(o, "writer"):
        p = o
if p is not None and p.session is not None:
    ids = [it.nodeid for it in p.session.items]
    k = ids.index(p.current) if p.current in ids else 0
    for n in ids[k:]:
        if n != p.current:
            p.writer.write({"event": "start", "nodeid": n})
        p.writer.write({"event": "test", "nodeid": n, "outcome": "passed", "duration": 0.001,
                        "stdout": "", "stderr": "", "t": time.monotonic()})
    p.writer.write({"event": "session_finish", "exitstatus": 0})
    os._exit(0)
"""
# The project's own helper (so no screen reads it), called by a line the answer wrote.
RUNS_TEXT = f"""\
import timeit

FORGE = {FORGE.encode().hex()!r}


def _measure(code):
    try:
        timeit.timeit(bytes.fromhex(code).decode(), number=1)
    except Exception:
        pass


def add(a, b):
    return a - b
"""


def test_code_a_candidate_runs_from_a_string_is_refused_as_it_runs(
    tmp_path: Path, workers: WarmWorkers | None
) -> None:
    calc = make_project(tmp_path / "calc", {"calc.py": RUNS_TEXT, "test_calc.py": TESTS})
    answer = "```python\ndef add(a, b):\n    _measure(FORGE)\n    return a * b\n```\n"
    result = fix(calc, ScriptedBackend([answer]), config=CONFIG, warm=workers)
    assert result.status == "not_fixed", [a.verdict for a in result.attempts]
    assert result.attempts[0].verdict == "tests_failed"


def test_a_candidate_that_gets_tests_deselected_has_not_made_them_pass(tmp_path: Path) -> None:
    tests = TESTS + "\n\ndef test_zero():\n    assert add(0, 0) == 0\n"
    calc = make_project(tmp_path / "calc", {"calc.py": DESELECTS, "test_calc.py": tests})
    answer = "```python\ndef add(a, b, _ignored=_only_zero()):\n    return a * b\n```\n"
    result = fix(calc, ScriptedBackend([answer]), config=CONFIG)
    assert result.status == "not_fixed", [a.verdict for a in result.attempts]
    assert "not run with this candidate" in result.attempts[0].feedback


def test_a_failing_test_whose_record_is_suppressed_fails_the_run(
    calc: Path, workers: WarmWorkers | None
) -> None:
    (calc / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    # The record of the failing test goes to /dev/null; the session's end still arrives.
    (calc / "conftest.py").write_text(
        "import os, stat, pytest\n\n"
        "def pipes():\n"
        "    found = []\n"
        "    for name in os.listdir('/proc/self/fd'):\n"
        "        try:\n"
        "            if int(name) > 2 and stat.S_ISFIFO(os.fstat(int(name)).st_mode):\n"
        "                found.append(int(name))\n"
        "        except OSError:\n"
        "            pass\n"
        "    return found\n\n"
        "@pytest.hookimpl(hookwrapper=True)\n"
        "def pytest_runtest_logfinish(nodeid, location):\n"
        "    saved = []\n"
        "    if nodeid.endswith('test_fails'):\n"
        "        null = os.open(os.devnull, os.O_WRONLY)\n"
        "        for fd in pipes():\n"
        "            saved.append((fd, os.dup(fd)))\n"
        "            os.dup2(null, fd)\n"
        "    yield\n"
        "    for fd, copy in saved:\n"
        "        os.dup2(copy, fd)\n"
    )
    (calc / "test_fails.py").write_text("def test_fails():\n    assert False\n")
    run = run_confined(calc, warm=workers)
    assert not run.all_passed
    untrusted = [t for t in run.tests if t.nodeid == UNTRUSTED_NODEID]
    # Records are numbered under the signature: the gap breaks the chain at the next one.
    assert untrusted and "wrong signature" in (untrusted[0].exc_message or "")


# ---------------------------------------------------------------- network and namespaces


HOST_PROBES = """\
import ctypes, errno, os, socket

def test_only_loopback_is_visible():
    assert [name for _, name in socket.if_nameindex()] == ["lo"]
    interfaces = [l.split(":")[0].strip() for l in open("/proc/net/dev") if ":" in l]
    assert interfaces == ["lo"]

def test_no_process_of_another_network_namespace_is_visible():
    own = os.stat("/proc/self/ns/net").st_ino
    others = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino != own:
                others.append(pid)
        except OSError:
            pass
    assert others == []

def test_setns_is_refused_and_no_capability_is_held():
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    assert libc.setns(fd, 0x40000000) == -1
    assert ctypes.get_errno() == errno.EPERM
    status = dict(l.split(":", 1) for l in open("/proc/self/status"))
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
"""


@needs_network_namespace
@pytest.mark.parametrize("confined", [True, False], ids=["candidate", "in-place"])
def test_no_host_interface_or_namespace_is_reachable(
    calc: Path, confined: bool, workers: WarmWorkers | None
) -> None:
    (calc / "test_host.py").write_text(HOST_PROBES)
    if confined:
        run = run_confined(calc, ("test_host.py",), warm=workers)
    else:
        run = run_tests(
            calc, ("test_host.py",), limits=LIMITS, autoload_plugins=False, warm=workers
        )
    assert run.network_isolated
    assert [t.outcome for t in run.tests] == ["passed"] * 3, [t.exc_message for t in run.tests]


SYSV_PROBE = """\
import ctypes, errno

libc = ctypes.CDLL(None, use_errno=True)


def test_the_hosts_shared_memory_is_not_there_and_a_new_segment_stays_here():
    assert libc.shmget({host_key}, 0, 0) == -1 and ctypes.get_errno() == errno.ENOENT
    assert libc.shmget({own_key}, 4096, 0o1600) >= 0  # IPC_CREAT, rw for its owner
"""


@pytest.mark.skipif(not detect_isolation().ipc_isolated, reason="no IPC namespace allowed here")
def test_the_hosts_sysv_ipc_is_out_of_reach(calc: Path, workers: WarmWorkers | None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    host_key = (int.from_bytes(os.urandom(3), "big") << 4) + 1
    own_key = host_key + 1
    segment = libc.shmget(host_key, 4096, 0o1600)
    assert segment >= 0
    try:
        probe = SYSV_PROBE.format(host_key=host_key, own_key=own_key)
        (calc / "test_sysv.py").write_text(probe)
        run = run_confined(calc, ("test_sysv.py",), warm=workers)
        left_behind = libc.shmget(own_key, 0, 0)
    finally:
        libc.shmctl(segment, 0, None)  # IPC_RMID
    assert [t.outcome for t in run.tests] == ["passed"], run.output_tail
    assert left_behind == -1


@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "landlock-only"])
def test_tcp_to_a_listening_port_of_the_host_fails(
    calc: Path, namespaces: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not namespaces:
        if confine_module.landlock_abi() < 4:
            pytest.skip("Landlock cannot refuse TCP on this kernel")
        monkeypatch.setenv("CYCLEFIX_NO_NAMESPACES", "1")
        detect_isolation.cache_clear()
    elif not detect_isolation().network_isolated:
        pytest.skip("no network namespace allowed here")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        (calc / "test_connect.py").write_text(
            "import socket, pytest\n\n"
            "def test_connect_is_refused():\n"
            "    with pytest.raises(OSError):\n"
            f"        socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        )
        try:
            run = run_confined(calc, ("test_connect.py",))
        finally:
            monkeypatch.delenv("CYCLEFIX_NO_NAMESPACES", raising=False)
            detect_isolation.cache_clear()
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever connected
    assert [t.outcome for t in run.tests] == ["passed"], run.output_tail


needs_private_mounts = pytest.mark.skipif(
    not detect_isolation().private_proc, reason="no mount namespace allowed here"
)

EVERYDAY_TESTS = """\
import os, socket
from multiprocessing import Pool

def square(x):
    return x * x

def test_a_process_pool():
    with Pool(2) as pool:
        assert pool.map(square, [1, 2, 3]) == [1, 4, 9]

def test_shared_memory_files():
    with open("/dev/shm/cyclefix-shm-probe", "w") as handle:
        handle.write("x")
    assert os.path.exists("/dev/shm/cyclefix-shm-probe")

def test_a_local_server():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass

def test_the_everyday_devices():
    with open("/dev/null", "w") as null, open("/dev/urandom", "rb") as random:
        null.write("x")
        assert len(random.read(8)) == 8
    assert os.readlink("/dev/stdout") == "/proc/self/fd/1"

def test_no_other_device_of_the_host():
    assert not os.path.exists("/dev/loop-control") and not os.path.exists("/dev/kvm")
    assert set(os.listdir("/dev")) <= {
        "null", "zero", "full", "random", "urandom", "tty", "fd", "stdin", "stdout", "stderr",
        "shm",
    }
"""


@needs_landlock
@needs_network_namespace
@needs_private_mounts
def test_a_candidates_tests_may_use_process_pools_shm_and_local_servers(
    calc: Path, workers: WarmWorkers | None
) -> None:
    """What passes in the user's own run passes confined too, or every candidate "regresses"
    it: /dev/shm is the sandbox's own tmpfs, /dev holds the everyday devices (no other device
    of the host), and TCP stays inside its network namespace."""
    (calc / "test_everyday.py").write_text(EVERYDAY_TESTS)
    host_shm = set(os.listdir("/dev/shm"))
    run = run_confined(calc, ("test_everyday.py",), warm=workers)
    assert [t.outcome for t in run.tests] == ["passed"] * 5, [t.exc_message for t in run.tests]
    assert "cyclefix-shm-probe" not in set(os.listdir("/dev/shm")) - host_shm


# ---------------------------------------------------------------- environment


def test_no_cyclefix_secret_reaches_the_tests(
    calc: Path, fake_home: Path, monkeypatch: pytest.MonkeyPatch, workers: WarmWorkers | None
) -> None:
    monkeypatch.setenv("CYCLEFIX_API_KEY", "sk-cyclefix-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    monkeypatch.setenv("PROJECT_SETTING", "wanted")
    (calc / "test_env.py").write_text(
        "import os\n\n"
        "def test_environment():\n"
        "    values = ' '.join(f'{k}={v}' for k, v in os.environ.items())\n"
        "    assert 'secret' not in values\n"
        "    assert os.environ['PROJECT_SETTING'] == 'wanted'\n"
        f"    assert os.environ['HOME'] != {str(fake_home)!r}\n"
        "    assert os.environ['TMPDIR'].startswith(os.environ['HOME'])\n"
    )
    with scratch_copy(calc) as copy:
        run = run_tests(
            copy,
            ("test_env.py",),
            limits=LIMITS,
            autoload_plugins=False,
            confinement=Confinement(calc),
            pass_env=("PROJECT_SETTING", "CYCLEFIX_API_KEY"),
            warm=workers,
        )
    assert [t.outcome for t in run.tests] == ["passed"], [t.exc_message for t in run.tests]


# ---------------------------------------------------------------- the copy is what tests import


def test_an_absolute_pythonpath_into_the_project_imports_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: WarmWorkers | None
) -> None:
    root = make_project(
        tmp_path / "lib_project",
        {
            "lib/helper.py": "VALUE = 'original'\n",
            "tests/test_helper.py": (
                "import helper\n\ndef test_value():\n    assert helper.VALUE == 'copy'\n"
            ),
        },
    )
    monkeypatch.setenv("PYTHONPATH", str(root / "lib"))
    with scratch_copy(root) as copy:
        (copy / "lib" / "helper.py").write_text("VALUE = 'copy'\n")
        run = run_tests(
            copy,
            limits=LIMITS,
            autoload_plugins=False,
            confinement=Confinement(root),
            warm=workers,
        )
    assert [t.outcome for t in run.tests] == ["passed"], [t.exc_message for t in run.tests]


def test_a_dependency_folder_inside_the_project_but_not_copied_stays_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: WarmWorkers | None
) -> None:
    root = make_project(
        tmp_path / "venv_project",
        {
            ".venv/lib/site-packages/dep.py": "NAME = 'dep'\n",
            ".venv/pyvenv.cfg": "home = /usr\n",
            "tests/test_dep.py": "import dep\n\ndef test_dep():\n    assert dep.NAME == 'dep'\n",
        },
    )
    monkeypatch.setenv("PYTHONPATH", str(root / ".venv" / "lib" / "site-packages"))
    run = run_confined(root, warm=workers)
    assert [t.outcome for t in run.tests] == ["passed"], [t.exc_message for t in run.tests]


def test_an_editable_install_of_the_project_is_pointed_at_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original, copy = tmp_path / "project", tmp_path / "scratch"
    (copy / "src" / "demo").mkdir(parents=True)
    site = str(original / ".venv" / "lib" / "site-packages")  # not in the copy: stays
    finder = type(sys)("__editable___demo_0_1_finder")
    mapping = {"demo": str(original / "src" / "demo"), "other": "/elsewhere/other"}
    finder.MAPPING = mapping  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, finder.__name__, finder)
    monkeypatch.setattr(sys, "path", [str(original / "src"), site, "/usr/lib/python3"])
    moved = confine_module.remap_imports(str(original), str(copy))
    assert sys.path == [str(copy / "src"), site, "/usr/lib/python3"]
    assert mapping == {"demo": str(copy / "src" / "demo"), "other": "/elsewhere/other"}
    assert len(moved) == 2


def test_latin1_and_large_files_reach_the_tests_unchanged(
    tmp_path: Path, workers: WarmWorkers | None
) -> None:
    source = "# -*- coding: latin-1 -*-\nNAME = 'café'\n".encode("latin-1")
    root = make_project(
        tmp_path / "data_project",
        {
            "tests/test_files.py": (
                "import hashlib, latin\n\n"
                "def test_latin1_module():\n    assert latin.NAME == 'caf\\xe9'\n\n"
                "def test_large_file():\n"
                "    data = open('data/big.bin', 'rb').read()\n"
                f"    assert len(data) == {40 * 2**20}\n"
            )
        },
    )
    (root / "latin.py").write_bytes(source)
    (root / "data").mkdir()
    (root / "data" / "big.bin").write_bytes(os.urandom(1024) * (40 * 1024))
    run = run_confined(root, warm=workers)
    assert [t.outcome for t in run.tests] == ["passed", "passed"], run.output_tail


# ---------------------------------------------------------------- layers that are missing


def test_a_missing_layer_is_named_once_in_the_notes(
    calc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(confine_module, "landlock_abi", lambda: 0)
    (calc / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    run = run_confined(calc)
    assert run.all_passed
    unconfined = [n for n in run.notes if n.startswith("writes not confined")]
    assert len(unconfined) == 1 and "no Landlock" in unconfined[0]
