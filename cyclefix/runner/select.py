"""Choose which tests to run: explicit ones, or the test files that import what changed.

The import graph is read with ``ast`` (nothing is imported or run): a changed module selects
every test file that imports it directly or through other project modules. Module names are
matched by every dotted suffix of the file's path (``src/pkg/mod.py`` is ``src.pkg.mod``,
``pkg.mod`` and ``mod``), which covers flat, package and src layouts and sys.path tricks at
the cost of now and then running a few tests too many.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from cyclefix.errors import CyclefixError
from cyclefix.runner.testfiles import is_skipped_dir, is_test_file


def select_tests(
    root: Path, changed: Sequence[Path] = (), explicit: Sequence[str] = ()
) -> tuple[str, ...]:
    """pytest args, relative to `root`, for the tests to run; () means the whole suite.

    `explicit` (paths or node ids: absolute, relative to the cwd, or relative to root) wins.
    Otherwise each changed test file selects itself, a changed conftest.py its folder, and a
    changed module the test files that import it; anything else falls back to the whole suite.
    """
    project = Path(root).resolve()
    if not project.is_dir():
        raise CyclefixError(f"no such project folder: {root}")
    if explicit:
        return tuple(dict.fromkeys(_explicit_arg(project, arg) for arg in explicit))
    if not changed:
        return ()
    graph: _ImportGraph | None = None
    selected: dict[str, None] = {}
    for given in changed:
        path = _resolve(project, Path(given))
        relative = _relative_to(path, project)
        if relative is None or path.suffix != ".py":
            return ()
        if path.name == "conftest.py":
            folder = Path(relative).parent.as_posix()
            if folder == ".":
                return ()
            selected[folder] = None
            continue
        if is_test_file(path):
            selected[relative] = None
        graph = graph or _ImportGraph(project, [_resolve(project, Path(c)) for c in changed])
        importers = graph.test_files_importing(path)
        if not importers and not is_test_file(path):
            return ()  # nothing we can see imports it: run everything
        for test_file in importers:
            selected[_relative_to(test_file, project) or str(test_file)] = None
    return tuple(selected)


def order_failing_first(tests: Sequence[str], previously_failing: Sequence[str]) -> tuple[str, ...]:
    """The same selection with the previously failing tests run first.

    Adds ``--cyclefix-first=NODEID`` options (read by our pytest plugin, which reorders the
    collected tests; run_tests leaves them out of ``selected``), and moves args that contain a
    failing test to the front. Failing tests outside the selection are not added.
    """
    args = list(tests)
    failing = [
        nodeid
        for nodeid in dict.fromkeys(previously_failing)
        if not args or any(_covers(arg, nodeid) for arg in args)
    ]
    if not failing:
        return tuple(args)
    ranked = sorted(
        range(len(args)), key=lambda i: 0 if any(_covers(args[i], f) for f in failing) else 1
    )
    return (*(f"--cyclefix-first={nodeid}" for nodeid in failing), *(args[i] for i in ranked))


def with_class_predecessors(nodeids: Sequence[str], order: Sequence[str]) -> tuple[str, ...]:
    """`nodeids` and the tests of their classes that ran before them in `order` (the user's
    run), in that order: a test class may hand state from one test to the next
    (`self.__class__.flag` set by an earlier test), so a test run ahead of the others alone
    can fail for want of it. Ids not in `order` come last, as given."""
    wanted = dict.fromkeys(nodeids)
    position = {nodeid: i for i, nodeid in enumerate(order)}
    last_in_class: dict[str, int] = {}
    for nodeid in wanted:
        parts = nodeid.split("::")
        if len(parts) >= 3 and nodeid in position:
            key = "::".join(parts[:-1])
            last_in_class[key] = max(last_in_class.get(key, -1), position[nodeid])
    leading = [
        nodeid
        for i, nodeid in enumerate(order)
        if nodeid in wanted
        or ("::" in nodeid and i < last_in_class.get(nodeid.rpartition("::")[0], -1))
    ]
    return (*leading, *(n for n in wanted if n not in position))


def _covers(arg: str, nodeid: str) -> bool:
    """Whether pytest arg `arg` (a path or node id) selects test `nodeid`."""
    arg = arg.rstrip("/")
    return (
        arg in (".", "") or nodeid == arg or nodeid.startswith((arg + "::", arg + "/", arg + "["))
    )


def _resolve(root: Path, path: Path) -> Path:
    path = path.expanduser()
    if path.is_absolute():
        return path.resolve()
    from_cwd = Path.cwd() / path
    if from_cwd.exists():
        return from_cwd.resolve()
    return (root / path).resolve()


def _relative_to(path: Path, root: Path) -> str | None:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None


def _explicit_arg(root: Path, arg: str) -> str:
    path_part, sep, rest = arg.partition("::")
    path = _resolve(root, Path(path_part))
    if not path.exists():
        raise CyclefixError(f"no such test file or folder: {path_part}")
    relative = _relative_to(path, root)
    if relative is None:
        raise CyclefixError(f"test path {path_part} is outside the project {root}")
    return relative + sep + rest


# ---------------------------------------------------------------- the import graph


def iter_python_files(root: Path) -> Iterator[Path]:
    """Every .py file of the project, skipping environments, VCS data and build output."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d
            for d in dirs
            if not is_skipped_dir(d) and not (Path(folder) / d / "pyvenv.cfg").exists()
        )
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(folder) / name


def module_names(path: Path, root: Path) -> tuple[str, ...]:
    """Names a file may be imported under: every dotted suffix of its path from the root."""
    relative = path.relative_to(root).with_suffix("")
    parts = list(relative.parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return tuple(
        ".".join(parts[i:]) for i in range(len(parts)) if all(p.isidentifier() for p in parts[i:])
    )


def _own_package(path: Path, root: Path) -> str:
    """The dotted package a file lives in, going up while folders hold __init__.py."""
    parts: list[str] = []
    folder = path.parent
    while folder != root and (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


# Parsed imports by (path, mtime, size): saving a file re-reads only that file.
_IMPORT_CACHE: dict[Path, tuple[tuple[int, int], frozenset[str]]] = {}


def imported_modules(path: Path, root: Path) -> frozenset[str]:
    """Absolute names of the modules a file imports (relative imports resolved)."""
    try:
        info = path.stat()
    except OSError:
        return frozenset()
    key = (info.st_mtime_ns, info.st_size)
    cached = _IMPORT_CACHE.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))  # bytes: honours coding cookies
    except (SyntaxError, ValueError, OSError, RecursionError, MemoryError):
        names: frozenset[str] = frozenset()
    else:
        names = frozenset(_imports_in(tree, _own_package(path, root)))
    _IMPORT_CACHE[path] = (key, names)
    return names


def _imports_in(tree: ast.AST, package: str) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                if node.level - 1 > len(base_parts):
                    continue
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            if base:
                yield base
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}" if base else alias.name


class _ImportGraph:
    """Which project files import which (through any chain of project modules)."""

    def __init__(self, root: Path, changed: Sequence[Path] = ()) -> None:
        self.root = root
        self.files = list(iter_python_files(root))
        self.by_name: dict[str, list[Path]] = {}
        # A changed file may be gone (deleted, renamed): it still has names to be imported by.
        known = set(self.files)
        extra = [
            p for p in changed if p not in known and p.suffix == ".py" and p.is_relative_to(root)
        ]
        for path in [*self.files, *extra]:
            for name in module_names(path, root):
                self.by_name.setdefault(name, []).append(path)
        self.importers: dict[Path, set[Path]] = {}
        for path in self.files:
            for imported in imported_modules(path, root):
                for target in self._files_for(imported):
                    if target != path:
                        self.importers.setdefault(target, set()).add(path)

    def _files_for(self, imported: str) -> Iterator[Path]:
        """Project files executed by importing `imported` (the module and its packages)."""
        parts = imported.split(".")
        for end in range(1, len(parts) + 1):
            yield from self.by_name.get(".".join(parts[:end]), ())

    def test_files_importing(self, path: Path) -> list[Path]:
        seen = {path}
        queue = [path]
        while queue:
            current = queue.pop()
            for importer in self.importers.get(current, ()):
                if importer not in seen:
                    seen.add(importer)
                    queue.append(importer)
        return sorted(p for p in seen if p != path and is_test_file(p))
