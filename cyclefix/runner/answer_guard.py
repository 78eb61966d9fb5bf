"""What a candidate's own lines may not do in its test process, refused as it happens.

The answer screen (refine/tampering.py) reads the names an answer writes; code run from a
string (through `timeit`, `typing`'s annotations, `doctest`...) names nothing it can read.
Python's audit hooks (PEP 578) see the acts themselves, however they are spelled: running
code no file holds, building a function or code object, the garbage collector's object
lists, other threads' frames, tracing, ctypes, a unix socket outside the run's folders, and
writing a Python file to import. Each is refused (the call raises RuntimeError) while a line
the answer wrote is on the stack; the tests and the project's own code keep every right.
Module code from a file the answer's lines wrote (a zip archive on `sys.path`, a file written
through `/proc/self/fd`), or from no file at all (`/proc`, a memfd), is refused whoever
imports it. A hook cannot be removed once added, and it is added before pytest imports any
project code.

Shipped next to the pytest plugin (as ``_cyclefix_answer_guard``), so it may import nothing
but the standard library and must run on Python 3.9.
"""

from __future__ import annotations

import json
import os
import sys
import sysconfig
import threading
from types import FrameType
from typing import Any

# Acts refused while the answer's lines are on the stack.
WATCHED = frozenset(
    {
        "exec", "function.__new__", "code.__new__", "marshal.loads", "gc.get_objects",
        "gc.get_referrers", "gc.get_referents", "sys._current_frames", "sys.settrace",
        "sys.setprofile", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
        "open", "os.rename", "os.link", "os.symlink", "sys._getframe", "object.__getattr__",
    }
)  # fmt: skip
# Acts refused only when the answer's line called them, or called one of _FRAME_GIVERS that
# did (`inspect.currentframe`, `logging.currentframe`, `Formatter.get_field`): logging,
# traceback and namedtuple reach frames for every caller, for their own use.
_FRAMES = frozenset({"sys._getframe", "object.__getattr__"})
_FORMATTER = "string.py"
_FRAME_GIVERS = ("inspect.py", "logging/__init__.py", "traceback.py", _FORMATTER)
# The attributes through which `object.__getattr__` hands out a frame.
_FRAME_ATTRS = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame"})
# Modules whose own code runs code it built from names it checked (namedtuple, dataclass).
_BUILDERS = ("collections/__init__.py", "dataclasses.py")
# os.open flags that write.
_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# Files whose writing plants code a later import would run.
_CODE_SUFFIXES = (".py", ".pyc", ".pth", ".so")
# Where no module's code comes from but one a candidate made (an fd's file, a memfd).
_NO_FILE = ("/proc/", "/dev/fd/", "/memfd:")
# The import machinery's frames.
_IMPORTING = "<frozen importlib"

_STDLIB = os.path.realpath(sysconfig.get_paths()["stdlib"])
# The runner's private folder in the test process: its tracer steps aside (`settrace(None)`)
# from wherever the test's calls have reached, the answer's lines included.
_OURS = os.path.dirname(os.path.realpath(__file__)) + os.sep
_TRACING = ("sys.settrace", "sys.setprofile")


def install_from_environment(variable: str, root: str) -> bool:
    """Install the hook for the lines named in `variable` (JSON: {path: [[first, last]]},
    paths relative to `root`, the run's copy); whether there were any."""
    text = os.environ.pop(variable, "")
    if not text:
        return False
    lines = json.loads(text)
    folders = [root, os.environ.get("TMPDIR", "")]
    install({os.path.join(root, rel): spans for rel, spans in lines.items()}, folders)
    return True


def install(answer: dict[str, Any], folders: list[str]) -> None:
    """Refuse the WATCHED acts while a line of `answer` ({file: [[first, last]]}) runs."""
    # Its state lives only in the hook, which nothing but the interpreter holds: no module
    # attribute the code under test could clear.
    guard = _Guard(answer, folders)
    frame_attrs, watched = _FRAME_ATTRS, WATCHED

    # Called for every audited act of the process: under a tracer, for every call (it reads
    # `frame.f_code`). So a plain function (a bound method costs twice as much a call) whose
    # common cases return at once.
    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "object.__getattr__":
            if len(args) < 2 or args[1] not in frame_attrs:
                return  # `f_code`, `__code__`: tracers and inspect read them millions of times
        elif event not in watched:
            return
        guard.check(event, args)

    sys.addaudithook(hook)


class _Guard:
    def __init__(self, answer: dict[str, Any], folders: list[str]) -> None:
        self.answer: dict[str, list[tuple[int, int]]] = {}
        for path, spans in answer.items():
            ranges = [(int(first), int(last)) for first, last in spans]
            self.answer[path] = ranges
            self.answer[os.path.realpath(path)] = ranges
        self.folders = tuple(os.path.realpath(f) + os.sep for f in folders if f)
        self.state = threading.local()
        # Files the answer's lines wrote (or named a link or rename after): code from them,
        # an archive's included, is never run.
        self.written: set[str] = set()

    def check(self, event: str, args: tuple[Any, ...]) -> None:
        """Raise when the WATCHED act `event` is refused."""
        if getattr(self.state, "busy", False):
            return
        self.state.busy = True  # what the hook itself does (sys._getframe) raises events too
        try:
            refused = self.refused(event, args)
        finally:
            self.state.busy = False
        if refused:
            raise RuntimeError(f"cyclefix: code a candidate wrote may not {refused}")

    def refused(self, event: str, args: tuple[Any, ...]) -> str:
        """What the act is, when the answer's lines run and it is refused; else ""."""
        if event == "exec" and self.planted(args[0]):
            return "run code it planted for an import"
        if event == "open":
            path, mode, flags = args[0], args[1], args[2]
            # open() gives a mode, os.open() only flags.
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else _WRITES & flags
            if not (writes and self.writes(path)):
                return ""
        elif event in ("os.rename", "os.link", "os.symlink"):
            if not self.writes(args[1]):  # the new name
                return ""
        elif event.startswith("socket."):
            address = args[1] if len(args) > 1 else None
            if not isinstance(address, (str, bytes)) or self.inside(address):
                return ""  # only unix sockets by path outside the run's folders
        caller = sys._getframe(3)  # refused <- check <- hook <- the audited call's caller
        if event in _TRACING and os.path.realpath(caller.f_code.co_filename).startswith(_OURS):
            return ""
        if event in _FRAMES:
            given = caller.f_code.co_filename.endswith(_FRAME_GIVERS)
            near = self.on_stack(caller, 1) or (given and self.on_stack(_past_formatter(caller), 1))
            return f"use {event}" if near else ""
        if not self.on_stack(caller):
            return ""
        if event in ("exec", "function.__new__", "code.__new__") and _built_by_stdlib(caller):
            return ""
        return {"exec": "run code no file holds"}.get(event, f"use {event}")

    def on_stack(self, frame: FrameType | None, depth: int = sys.maxsize) -> bool:
        """Whether a line of the answer called what runs in `frame` (within `depth` frames;
        by default the whole stack: a deep recursion hides nothing), not through an import:
        a module an answer imports runs its own code (a library's generated methods, .pyc)."""
        for _ in range(depth):
            if frame is None or frame.f_code.co_filename.startswith(_IMPORTING):
                return False
            spans = self.answer.get(frame.f_code.co_filename)
            if spans and any(first <= frame.f_lineno <= last for first, last in spans):
                return True
            frame = frame.f_back
        return False

    def writes(self, path: object) -> bool:
        """Whether writing `path` plants code; the answer's writes are noted either way."""
        name = _real_name(path)
        if name is None or not self.on_stack(sys._getframe(4)):  # <- refused <- check <- hook
            return False
        self.written.add(name)
        return name.endswith(_CODE_SUFFIXES)

    def planted(self, code: object) -> bool:
        """Whether module code (the `exec` of an import) comes from a file the answer wrote, or
        from a path no file of a project has."""
        filename = getattr(code, "co_filename", "")
        if not isinstance(filename, str) or filename.startswith("<"):
            return False  # code from a string: the on-stack rule judges it
        real = os.path.realpath(filename)
        if filename.startswith(_NO_FILE) or real.startswith(_NO_FILE):
            return True
        return any(real == name or real.startswith(name + os.sep) for name in self.written)

    def inside(self, address: str | bytes) -> bool:
        path = os.path.realpath(os.fsdecode(address))
        return any(path.startswith(folder) for folder in self.folders)


def _real_name(path: object) -> str | None:
    """The file `path` (str, bytes or a path object) names, through links and `/proc/self/fd`;
    None for a file descriptor."""
    try:
        return os.path.realpath(os.fsdecode(path))  # type: ignore[arg-type]
    except TypeError:
        return None


def _past_formatter(giver: FrameType) -> FrameType | None:
    """Who called a frame giver: past `string.Formatter`'s own frames, which nest (vformat,
    _vformat, get_field) between the answer and the attribute it reads."""
    frame = giver.f_back
    while frame is not None and frame.f_code.co_filename.endswith(_FORMATTER):
        frame = frame.f_back
    return frame


def _built_by_stdlib(caller: FrameType) -> bool:
    path = os.path.realpath(caller.f_code.co_filename)
    return path.startswith(_STDLIB) and path.endswith(_BUILDERS)
