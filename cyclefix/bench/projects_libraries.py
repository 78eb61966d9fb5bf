"""Real PyPI libraries for the real-project suite: pinned sdists, fetched by pip and cached.

A library's sdist is downloaded once (`pip download --no-binary :all: --no-deps NAME==VERSION`)
into the user cache ($CYCLEFIX_CACHE, else ~/.cache/cyclefix), checked against the sha256 the
manifest records, and unpacked there as the *pristine* tree. Its pytest configuration is
replaced by our own pytest.ini (pythonpath, test paths, the deselected tests), so the library's
own settings (coverage plugins, doctest options) never decide what runs. Sources are never
written into the repository. The tests need only pytest: they run on the bench's own Python.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.errors import CyclefixError

PYTEST_INI = "pytest.ini"
# Seconds pip may take to download (and prepare the metadata of) one sdist.
DOWNLOAD_TIMEOUT = 300.0
_PRISTINE_MARK = ".cyclefix-pristine"


@dataclass(frozen=True)
class LibrarySpec:
    name: str  # the PyPI name
    version: str
    # The import package's folder relative to the sdist root, e.g. "src/cachetools".
    package: str
    # Test paths relative to the sdist root (pytest's testpaths).
    tests: tuple[str, ...]
    # Folder put on sys.path so the package imports from the tree, not from an installed copy.
    pythonpath: str = "."
    # Node ids left out of every run: too slow for the per-test timeout, or failing as shipped.
    deselect: tuple[str, ...] = ()
    per_test_timeout: float = 3.0
    # The sdist's sha256, recorded when the manifest is seeded; empty: not checked yet.
    sha256: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def slug(self) -> str:
        return f"{self.name}-{self.version}"


# The libraries the seeder draws from: pure Python, tests in the sdist, pytest their only need.
CANDIDATES: tuple[LibrarySpec, ...] = (
    LibrarySpec(
        "more-itertools",
        "11.2.1",
        package="more_itertools",
        tests=("tests",),
        deselect=(
            # Seconds each on a busy machine: over the per-test timeout, not bugs.
            "tests/test_recipes.py::PrimeFunctionTests::test_primes",
            "tests/test_recipes.py::PrimeFunctionTests::test_nth_prime_approximate",
            "tests/test_more.py::DiscreteFourierTransformTests::test_roundtrip",
            "tests/test_more.py::TestConcurrentTee::test_concurrent_consumers",
            "tests/test_more.py::TestSerialize::test_concurrent_calls",
        ),
    ),
    LibrarySpec("toolz", "1.2.0", package="toolz", tests=("toolz/tests",)),
    LibrarySpec(
        "cachetools", "8.0.2", package="src/cachetools", tests=("tests",), pythonpath="src"
    ),
    LibrarySpec("semver", "3.1.2", package="src/semver", tests=("tests",), pythonpath="src"),
    LibrarySpec(
        "webcolors", "25.10.0", package="src/webcolors", tests=("tests",), pythonpath="src"
    ),
    LibrarySpec("parse", "1.22.4", package="parse", tests=("tests",)),
    LibrarySpec("inflection", "0.5.1", package="inflection", tests=("test_inflection.py",)),
)
# Seeded into their own manifest (benchmarks/projects/manifest-unseen.json) and never looked at
# while the engine was tuned on the ones above: the held-out figures. Seeded only when named.
HELD_OUT: tuple[LibrarySpec, ...] = (
    LibrarySpec("isodate", "0.7.2", package="src/isodate", tests=("tests",), pythonpath="src"),
    LibrarySpec("boltons", "26.2.0", package="boltons", tests=("tests",)),
    LibrarySpec("tabulate", "0.10.0", package="tabulate", tests=("test",)),
    # A second held-out set (manifest-unseen-2.json), seeded at stop 29 after its engine change.
    LibrarySpec("idna", "3.21", package="idna", tests=("tests",)),
    LibrarySpec("pathspec", "1.1.1", package="pathspec", tests=("tests",)),
    # A third held-out set (manifest-unseen-3.json), seeded at stop 30 after its first changes.
    LibrarySpec("sqlparse", "0.6.1", package="sqlparse", tests=("tests",)),
    LibrarySpec("pyasn1", "0.6.5", package="pyasn1", tests=("tests",)),
    # A fourth held-out set (manifest-unseen-4.json), seeded at stop 31.
    LibrarySpec("pycparser", "3.12", package="pycparser", tests=("tests",)),
    LibrarySpec("mistune", "3.4.0", package="src/mistune", tests=("tests",), pythonpath="src"),
    # A fifth held-out set (manifest-unseen-5.json), seeded at stop 33.
    LibrarySpec("docopt-ng", "0.9.0", package="docopt", tests=("tests",)),
    LibrarySpec("pytz", "2026.6", package="pytz", tests=("pytz/tests",)),
    # A sixth held-out set (manifest-unseen-6.json), seeded at stop 41.
    LibrarySpec("rfc3986", "2.0.0", package="src/rfc3986", tests=("tests",), pythonpath="src"),
    # Its tests are one file named tests.py, which pytest collects only when named.
    LibrarySpec("voluptuous", "0.16.0", package="voluptuous", tests=("voluptuous/tests/tests.py",)),
    # A seventh held-out set (manifest-unseen-7.json), seeded at stop 44.
    LibrarySpec("tinydb", "4.9.0", package="tinydb", tests=("tests",)),
    LibrarySpec("pyflakes", "4.1.0", package="pyflakes", tests=("pyflakes/test",)),
)


def cache_root() -> Path:
    """Where downloaded sdists and the trees made from them live: never the repository."""
    configured = os.environ.get("CYCLEFIX_CACHE")
    base = Path(configured).expanduser() if configured else Path.home() / ".cache" / "cyclefix"
    return base / "bench" / "projects"


def pytest_ini(spec: LibrarySpec) -> str:
    """Our pytest.ini for a library tree: its tests, its import path, nothing of its own."""
    lines = [
        "[pytest]",
        f"testpaths = {' '.join(spec.tests)}",
        f"pythonpath = {spec.pythonpath}",
    ]
    if spec.deselect:
        lines.append("addopts =")
        lines += [f"    --deselect {nodeid}" for nodeid in spec.deselect]
    return "\n".join(lines) + "\n"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _find_sdist(folder: Path, spec: LibrarySpec) -> Path | None:
    stem = spec.name.replace("-", "_").lower()
    for path in sorted(folder.glob("*.tar.gz")):
        lowered = path.name.lower().replace("-", "_")
        if lowered == f"{stem}_{spec.version}.tar.gz":
            return path
    return None


def fetch_sdist(spec: LibrarySpec, cache: Path) -> Path:
    """The library's sdist in the cache, downloaded with pip when missing; sha256 checked."""
    folder = cache / "sdists"
    folder.mkdir(parents=True, exist_ok=True)
    found = _find_sdist(folder, spec)
    if found is None:
        command = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
        command += [
            "--disable-pip-version-check",
            "-d",
            str(folder),
            f"{spec.name}=={spec.version}",
        ]
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=DOWNLOAD_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise CyclefixError(f"cannot download {spec.slug}: {exc}") from exc
        found = _find_sdist(folder, spec)
        if done.returncode != 0 or found is None:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise CyclefixError(f"cannot download the sdist of {spec.slug}: {' '.join(tail)}")
    if spec.sha256 and file_sha256(found) != spec.sha256:
        raise CyclefixError(
            f"{found} does not match the manifest's sha256 for {spec.slug}; delete it to refetch"
        )
    return found


def _unpack(sdist: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        with tarfile.open(sdist, "r:gz") as archive:
            archive.extractall(scratch, filter="data")
        tops = [p for p in Path(scratch).iterdir() if p.is_dir()]
        if len(tops) != 1:
            raise CyclefixError(f"{sdist.name} does not hold one top folder")
        tops[0].rename(target)


def pristine_tree(spec: LibrarySpec, cache: Path | None = None) -> Path:
    """The unpacked library with our pytest.ini, made once per spec and then reused."""
    cache = cache or cache_root()
    sdist = fetch_sdist(spec, cache)
    target = cache / "src" / spec.slug
    mark = target / _PRISTINE_MARK
    wanted = pytest_ini(spec)
    if mark.is_file() and mark.read_text(encoding="utf-8") == wanted:
        return target
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _unpack(sdist, target)
    if not (target / spec.package).is_dir():
        shutil.rmtree(target)
        raise CyclefixError(f"{spec.slug}: the sdist has no package folder {spec.package}")
    (target / PYTEST_INI).write_text(wanted, encoding="utf-8")
    mark.write_text(wanted, encoding="utf-8")
    return target


def library_sources(pristine: Path, spec: LibrarySpec) -> list[Path]:
    """The package's own modules (no tests), relative to the tree, in a stable order."""
    package = pristine / spec.package
    found: list[Path] = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(pristine)
        parts = rel.parts
        if any(p in ("tests", "test") for p in parts) or path.name.startswith("test_"):
            continue
        if path.name == "conftest.py":
            continue
        found.append(rel)
    return found
