"""The project's Python files as a tree, each test file marked with its latest status."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from cyclefix.runner.testfiles import is_test_file

FileStatus = Literal["passed", "failed", "running", "unknown"]

STATUS_MARKS: dict[FileStatus, tuple[str, str]] = {
    "passed": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "running": ("◌", "yellow"),
    "unknown": ("·", "dim"),
}
SUSPECT_MARK = ("⚑", "dark_orange")


class ProjectTree(Tree[str]):
    """Folders and .py files; node data is the project-relative path ("" for folders)."""

    DEFAULT_CSS = """
    ProjectTree { width: 32; border: round $primary 50%; }
    ProjectTree:focus { border: round $primary; }
    """

    def __init__(self, root_name: str, *, id: str | None = None) -> None:
        super().__init__(Text(root_name, style="bold"), data="", id=id)
        self.border_title = "Project"
        self.show_root = True
        self._files: tuple[str, ...] = ()
        self._file_nodes: dict[str, TreeNode[str]] = {}
        self._status: dict[str, FileStatus] = {}
        self._failures: dict[str, int] = {}
        self._suspects: frozenset[str] = frozenset()

    @property
    def files(self) -> tuple[str, ...]:
        return self._files

    def set_files(self, files: Iterable[str]) -> None:
        """Rebuild the tree from project-relative paths, keeping statuses."""
        self._files = tuple(files)
        self.root.remove_children()
        self._file_nodes.clear()
        folders: dict[str, TreeNode[str]] = {"": self.root}
        for rel in self._files:
            parent = self.root
            parts = rel.split("/")
            for depth in range(1, len(parts)):
                key = "/".join(parts[:depth])
                if key not in folders:
                    folders[key] = parent.add(Text(parts[depth - 1] + "/", style="bold"), data="")
                    folders[key].expand()
                parent = folders[key]
            self._file_nodes[rel] = parent.add_leaf(self._label(rel), data=rel)
        self.root.expand()

    def set_status(
        self,
        status: Mapping[str, FileStatus],
        failures: Mapping[str, int],
        suspects: Iterable[str] = (),
    ) -> None:
        """Mark test files with their status and source files the failures point at."""
        self._status = dict(status)
        self._failures = dict(failures)
        self._suspects = frozenset(suspects)
        for rel, node in self._file_nodes.items():
            node.set_label(self._label(rel))

    def select_path(self, rel: str) -> None:
        node = self._file_nodes.get(rel)
        if node is not None:
            self.move_cursor(node)

    def _label(self, rel: str) -> Text:
        name = Path(rel).name
        if is_test_file(rel):
            status = self._status.get(rel, "unknown")
            mark, style = STATUS_MARKS[status]
            label = Text.assemble((mark, style), " ", (name, style if status == "failed" else ""))
            count = self._failures.get(rel, 0)
            if status == "failed" and count:
                label.append(f" ({count})", style="red")
            return label
        if rel in self._suspects:
            mark, style = SUSPECT_MARK
            return Text.assemble((mark, style), " ", (name, style))
        return Text.assemble("  ", name)
