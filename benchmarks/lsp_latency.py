"""How long an editor waits on `cyclefix serve`, against plain pytest.

Generates a 20-test project with one bug, starts the real server over stdio, and times:
  1. didSave -> diagnostics, as a ratio to running the same pytest selection bare, both as
     `python -m pytest -q FILE` (the target ratio) and as lean pytest (no plugin autoload,
     no cache provider: a floor, since cyclefix's runner autoloads plugins); autoRefine
     off, debounce 0; median of --runs, the measurements alternating run by run;
  2. didSave -> a verified fix offered, with a scripted backend (the server's own cost)
     and, unless --no-real-model, with a real model (--model, default the 0.5B; the first
     save includes loading it).

    .venv/bin/python benchmarks/lsp_latency.py --runs 7 [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

REAL_MODEL = "qwen2.5-coder-0.5b"  # the default of --model
TEST_FILE = "tests/test_numbers.py"

MODULE = '''"""Small number helpers."""


def is_even(n: int) -> bool:
    """True for even integers."""
    return n % 2 == 1


def clamp(x: float, low: float, high: float) -> float:
    """x limited to the range [low, high]."""
    return max(low, min(x, high))


def digits_sum(n: int) -> int:
    """Sum of the decimal digits of a non-negative integer."""
    return sum(int(d) for d in str(n))


def factorial(n: int) -> int:
    """n! for n >= 0."""
    out = 1
    for k in range(2, n + 1):
        out *= k
    return out
'''

FIXED_IS_EVEN = '''def is_even(n: int) -> bool:
    """True for even integers."""
    return n % 2 == 0
'''


def _tests() -> str:
    cases = [
        "assert is_even(2)",
        "assert not is_even(3)",
        "assert is_even(0)",
        "assert not is_even(-7)",
        "assert clamp(5, 0, 10) == 5",
        "assert clamp(-1, 0, 10) == 0",
        "assert clamp(11, 0, 10) == 10",
        "assert clamp(0.5, 0, 1) == 0.5",
        "assert digits_sum(0) == 0",
        "assert digits_sum(123) == 6",
        "assert digits_sum(9999) == 36",
        "assert digits_sum(1001) == 2",
        "assert factorial(0) == 1",
        "assert factorial(1) == 1",
        "assert factorial(5) == 120",
        "assert factorial(10) == 3628800",
        "assert clamp(3, 3, 3) == 3",
        "assert digits_sum(5) == 5",
        "assert factorial(3) == 6",
        "assert clamp(-5, -10, -1) == -5",
    ]
    body = "from numbers_util import clamp, digits_sum, factorial, is_even\n"
    for i, case in enumerate(cases, 1):
        body += f"\n\ndef test_{i:02d}():\n    {case}\n"
    return body


def make_project(root: Path) -> Path:
    project = root / "twenty"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "twenty"\nversion = "0"\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\npythonpath = ["."]\n'
    )
    (project / "numbers_util.py").write_text(MODULE)
    (project / TEST_FILE).write_text(_tests())
    return project.resolve()


def bare_pytest_seconds(project: Path, *, lean: bool = False) -> float:
    """One plain pytest run of the selection; `lean`: without plugin autoloading and the
    cache provider, the floor (cyclefix's runner autoloads plugins, so projects' own pytest
    plugins keep working)."""
    env = dict(os.environ)
    command = [sys.executable, "-m", "pytest", "-q", TEST_FILE]
    if lean:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        command[3:3] = ["-p", "no:cacheprovider"]
    started = time.perf_counter()
    subprocess.run(command, cwd=project, capture_output=True, check=False, env=env)
    return time.perf_counter() - started


class Session:
    """A server process and what it has sent: diagnostics by URI, with arrival times."""

    def __init__(self, log_file: Path) -> None:
        self.client = LanguageClient("lsp-latency", "1")
        self.log_file = log_file
        self.published: list[tuple[float, types.PublishDiagnosticsParams]] = []
        self.messages: list[str] = []

        def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.published.append((time.perf_counter(), params))

        def on_message(params: types.ShowMessageParams) -> None:
            self.messages.append(params.message)

        def ignore(params: Any) -> None:
            """Accept notifications and requests the benchmark does not look at."""

        handlers: dict[str, Callable[[Any], None]] = {
            types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: on_diagnostics,
            types.WINDOW_SHOW_MESSAGE: on_message,
            types.WINDOW_LOG_MESSAGE: ignore,
            types.WINDOW_WORK_DONE_PROGRESS_CREATE: ignore,
            types.PROGRESS: ignore,
        }
        for method, handler in handlers.items():
            register: Callable[[Callable[[Any], None]], object] = self.client.feature(method)
            register(handler)

    async def start(self, project: Path, options: dict[str, Any]) -> None:
        await self.client.start_io(
            sys.executable, "-m", "cyclefix.cli", "serve", "--log-file", str(self.log_file)
        )
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(
                    window=types.WindowClientCapabilities(work_done_progress=True)
                ),
                root_uri=from_fs_path(str(project)),
                initialization_options=options,
            )
        )
        self.client.initialized(types.InitializedParams())

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()  # type: ignore[no-untyped-call]

    def open(self, path: Path) -> str:
        uri = from_fs_path(str(path)) or path.as_uri()
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=path.read_text()
                )
            )
        )
        return uri

    def change(self, uri: str, version: int, text: str) -> None:
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def save(self, uri: str) -> float:
        started = time.perf_counter()
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        return started

    async def wait(
        self,
        since: float,
        match: Callable[[types.PublishDiagnosticsParams], bool],
        timeout: float,
    ) -> float:
        """Seconds from `since` to the first matching publish after it."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for at, params in self.published:
                if at >= since and match(params):
                    return at - since
            await asyncio.sleep(0.002)
        raise TimeoutError(f"no matching diagnostics within {timeout}s; messages: {self.messages}")


def _has_fix(params: types.PublishDiagnosticsParams, seen: set[str]) -> bool:
    for d in params.diagnostics:
        if d.code == "fix-available" and isinstance(d.data, dict):
            fix_id = d.data.get("fixId")
            if fix_id not in seen:
                seen.add(str(fix_id))
                return True
    return False


async def diagnostics_latency(
    project: Path, runs: int, log_dir: Path
) -> tuple[list[float], list[float], list[float]]:
    """(server save->diagnostics, bare pytest, lean bare pytest) seconds, interleaved run by
    run so that all see the same machine load."""
    session = Session(log_dir / "bench-diagnostics.log")
    await session.start(project, {"autoRefine": False, "debounce": 0})
    source = project / "numbers_util.py"
    test_uri = from_fs_path(str(project / TEST_FILE))
    uri = session.open(source)
    lsp: list[float] = []
    bare: list[float] = []
    lean: list[float] = []
    try:
        for i in range(runs + 1):  # the first round warms imports and the file cache
            started = session.save(uri)
            published = await session.wait(
                started, lambda p: p.uri == test_uri and bool(p.diagnostics), 120
            )
            await asyncio.sleep(0.3)
            plain = await asyncio.to_thread(bare_pytest_seconds, project)
            plain_lean = await asyncio.to_thread(bare_pytest_seconds, project, lean=True)
            if i > 0:
                lsp.append(published)
                bare.append(plain)
                lean.append(plain_lean)
    finally:
        await session.stop()
    return lsp, bare, lean


async def fix_latency(
    project: Path, model: str, runs: int, log_dir: Path, timeout: float
) -> list[float]:
    session = Session(log_dir / "bench-fix.log")
    await session.start(project, {"model": model, "debounce": 0, "autoRefine": True})
    source = project / "numbers_util.py"
    uri = session.open(source)
    text = source.read_text()
    seen: set[str] = set()
    times = []
    try:
        for i in range(runs):
            # A real edit each time (a comment), so the last fix goes stale and a new one comes.
            text = text + f"# edit {i}\n"
            session.change(uri, i + 2, text)
            source.write_text(text)
            started = session.save(uri)
            times.append(await session.wait(started, lambda p: _has_fix(p, seen), timeout))
    finally:
        await session.stop()
    return times


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def _model_installed(name: str) -> bool:
    from cyclefix.models.install import installed_problem

    return installed_problem(name) is None


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cyclefix-bench-") as tmp:
        tmp_path = Path(tmp)
        project = make_project(tmp_path)
        replies = tmp_path / "replies.json"
        replies.write_text(json.dumps([f"```python\n{FIXED_IS_EVEN}```\n"]))
        report: dict[str, Any] = {"runs": args.runs, "tests": 20}

        report["cpus"] = os.cpu_count()
        report["load_average_before"] = round(os.getloadavg()[0], 2)
        lsp, bare, lean = await diagnostics_latency(project, args.runs, tmp_path)
        report["bare_pytest_s"] = _stats(bare)
        report["bare_pytest_lean_s"] = _stats(lean)
        report["save_to_diagnostics_s"] = _stats(lsp)
        # The target: under 1.2 against the pytest command a user would type.
        report["ratio"] = statistics.median(lsp) / statistics.median(bare)
        # Against the lean floor: how much plugin autoloading (on both sides) costs here.
        report["ratio_vs_lean"] = statistics.median(lsp) / statistics.median(lean)

        scripted = await fix_latency(
            project, f"scripted:{replies}", args.runs, tmp_path, timeout=120
        )
        report["save_to_fix_scripted_s"] = _stats(scripted)

        if args.real_model and _model_installed(args.model):
            real = await fix_latency(
                project, args.model, args.real_runs, tmp_path, timeout=args.real_timeout
            )
            report["save_to_fix_real_model"] = {
                "model": args.model,
                "first_s": real[0],  # includes loading the model
                "later_s": _stats(real[1:]) if len(real) > 1 else None,
            }
        elif args.real_model:
            report["save_to_fix_real_model"] = f"{args.model} is not installed"
        report["load_average_after"] = round(os.getloadavg()[0], 2)
        return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--real-runs", type=int, default=3)
    parser.add_argument("--model", default=REAL_MODEL, help="the real model's registry name")
    parser.add_argument("--real-timeout", type=float, default=600.0)
    parser.add_argument("--no-real-model", dest="real_model", action="store_false")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    report = asyncio.run(main_async(args))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
