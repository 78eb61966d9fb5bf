"""What an answer must not reach: the test run's machinery and the interpreter's internals.

A fix changes what its functions compute. Code that walks the garbage collector or the call
stack, traces frames, imports pytest or unittest, runs strings as code or starts processes can
find the test run's own objects in its process and change the verdict (the sandbox confines
what it writes, not what it does inside the test process). Such an answer is turned away before
any test runs, as is one that changes files' permissions or times (no sandbox rule covers
them) or hides a name it uses (`"tixe_"[::-1]`). Only what the answer adds counts: what the
file already used is the project's.
"""

from __future__ import annotations

import ast
import functools
import re
from typing import TypeGuard

# Modules an answer may not import: introspection, the test frameworks, code loading (doctest
# runs docstrings' text), processes (webbrowser runs the program `$BROWSER` names), signals
# and sockets.
MODULES = frozenset(
    {
        "gc", "inspect", "ctypes", "_ctypes", "cffi", "importlib", "builtins", "__builtin__",
        "pytest", "_pytest", "unittest", "mock", "pluggy", "atexit", "faulthandler", "signal",
        "socket", "_socket", "subprocess", "_posixsubprocess", "multiprocessing", "threading",
        "_thread", "tracemalloc", "pdb", "bdb", "trace", "code", "codeop", "marshal", "mmap",
        "pty", "posix", "resource", "asyncio", "pickle", "_pickle", "copyreg", "shelve", "runpy",
        "pkgutil", "zipimport", "pydoc", "concurrent", "timeit", "cProfile", "profile",
        "doctest", "webbrowser",
    }
)  # fmt: skip
# Submodules of allowed packages that connect to sockets (a syslog handler: /dev/log).
SUBMODULES = frozenset({"logging.handlers", "logging.config"})
# Attributes that reach frames, code objects or every object of a type; a package's import
# path and the ways to add to the import path (a zip archive put there is imported); a mail
# reader that runs a shell command.
ATTRIBUTES = frozenset(
    {
        "_getframe", "_current_frames", "settrace", "setprofile", "gettrace", "f_back",
        "f_locals", "f_globals", "f_builtins", "f_trace", "f_trace_lines", "f_trace_opcodes",
        "f_code", "tb_frame", "tb_next", "__traceback__", "gi_frame", "cr_frame", "ag_frame",
        "gi_code", "__globals__", "__code__", "__closure__", "__builtins__", "__subclasses__",
        "__mro__", "get_objects", "get_referrers", "get_referents", "_exit", "CodeType",
        "walk_stack", "walk_tb", "__annotations__", "__self__", "__import__", "__loader__",
        "Formatter", "vformat", "get_field", "__path__", "submodule_search_locations",
        "addsitedir", "addpackage", "IMAP4_stream",
    }
)  # fmt: skip
# Attributes refused on any object, not as bare strings (common words): other modules' names
# for `sys` and `os` (`random._os`, `os.sys`), the ways around a check of what is imported;
# and metadata no sandbox rule covers (permissions, owners, times, links, extended attributes).
REACHING = frozenset(
    {
        "sys", "_sys", "_os", "chmod", "lchmod", "fchmod", "chown", "lchown", "fchown", "utime",
        "setxattr", "removexattr", "chflags", "lchflags", "symlink_to", "hardlink_to", "copystat",
        "copymode", "touch",
    }
)  # fmt: skip
# Attributes of `os` that start, signal or leave processes, plant links or files no audit
# event sees (`mknod`), or set the environment a program started later reads.
OS_ATTRIBUTES = frozenset(
    {
        "kill", "killpg", "fork", "forkpty", "system", "popen", "execv", "execve", "execvp",
        "execvpe", "execl", "execle", "execlp", "execlpe", "spawnv", "spawnve", "spawnl",
        "spawnle", "spawnvp", "spawnvpe", "spawnlp", "spawnlpe", "posix_spawn", "posix_spawnp",
        "startfile", "setsid", "symlink", "chroot", "unshare", "setns", "abort",
        "register_at_fork", "mknod", "putenv", "unsetenv",
    }
)  # fmt: skip
# Attributes of `sys` that hold the interpreter's modules, import machinery and monitoring.
SYS_ATTRIBUTES = frozenset(
    {"modules", "meta_path", "path_hooks", "path_importer_cache", "monitoring"}
)
# Attributes refused only on the module named, being common words elsewhere: the import path
# (a zip archive put on it is imported), a callback run at exit, the site setup run again.
OF_MODULE = {
    "sys": frozenset({"path"}),
    "weakref": frozenset({"finalize"}),
    "site": frozenset({"main"}),
}
# Ways to read the environment; anything else done with `os.environ` (a write, `.update`,
# holding it) sets what a test's skip condition or a program started later reads.
_ENVIRONMENT = frozenset({"environ", "environb"})
_ENVIRONMENT_READS = frozenset({"get", "copy", "items", "keys", "values"})
_COPIED_BY = frozenset({"dict", "len", "sorted", "list", "set", "tuple"})
# Characters that make the answer read other than it runs, on a terminal or in an editor: C0
# and C1 controls but tab, newline, carriage return and form feed (`\x1b[2J`), and the
# bidirectional overrides and isolates ("Trojan Source"). Escapes written as text are fine.
_HIDDEN = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Attributes that, set, change what an object is or what code a class builds from its
# fields: a test module turned into another class, dataclass fields named by code.
STORED = frozenset({"__class__", "__annotations__", "__bases__", "__dict__"})
# Builtins that run text as code or import by name.
CALLS = frozenset({"exec", "eval", "compile", "__import__", "breakpoint"})
# Module-level names that hold the builtins or the import machinery (a package's own path).
NAMES = frozenset({"__builtins__", "__loader__", "__spec__", "__path__"})
# Calls that name an attribute or module in a string: the name is their second argument, or
# their first for those in _NAME_FIRST.
_BY_NAME = frozenset(
    {
        "getattr", "setattr", "delattr", "hasattr", "import_module", "attrgetter",
        "methodcaller", "__getattribute__", "__getattr__", "__setattr__", "__delattr__",
    }
)  # fmt: skip
_NAME_FIRST = frozenset({"import_module", "attrgetter", "methodcaller"})
# By-name calls that only read whether a name is there: a computed name may stay unseen.
_COMPUTED_OK = frozenset({"hasattr"})
# Builtins that compute a string from constants without reading any data.
_PURE = frozenset(
    {"chr", "ord", "str", "bytes", "bytearray", "map", "reversed", "list", "tuple", "sorted",
     "int", "len", "range", "sum", "format"}
)  # fmt: skip
# Calls whose result maps names to a module's or a function's variables.
_NAMESPACES = frozenset({"globals", "locals", "vars"})
# What a string built from pieces (`"_" + "exit"`) may not spell.
_SPELLED = ATTRIBUTES | REACHING | MODULES | OS_ATTRIBUTES | SYS_ATTRIBUTES | CALLS | NAMES
# Modules whose attributes an answer may not look up by a computed name.
_LOOKED_UP = MODULES | {"sys", "os"}
# Modules an answer may use only as `module.name`: held as a value (`[sys][0]`, a default
# argument, `reduce(getattr, ..., os)`), what is looked up on them escapes every check here.
_HELD = _LOOKED_UP | {"posix", "shutil"}
# Modules an answer may not take from another module's namespace (`from logging import
# threading`, `from site import builtins`); common words that name other things are left out.
_REEXPORTED = _HELD - {"code", "profile", "trace", "resource", "mock"}
# The runner's private modules in the test process (`_cyclefix_pytest_plugin`).
_PRIVATE_PREFIX = "_cyclefix"
# A constant that names an object by its dotted path (`"os._exit"`, for `pydoc.locate`;
# `"0.f_back.f_locals"`, for `string.Formatter().get_field`).
_DOTTED = re.compile(r"\w+(?:\[\w+\])*(?:\.[A-Za-z_]\w*(?:\[\w+\])*)+")
# A format string's replacement field, up to its conversion or spec: `{0.f_back!r}`.
_FIELD = re.compile(r"\{([^{}!:]*)")


def tampering(before: str, after: str) -> list[str]:
    """What `after` reaches that `before` did not: one phrase each ("imports `gc`")."""
    added = _reaches(after) - _reaches(before)
    return sorted(added)


# The base file is the same for every candidate of a round: parsed once.
@functools.lru_cache(maxsize=16)
def _reaches(source: str) -> frozenset[str]:
    hidden = {_hidden_character(c) for c in _HIDDEN.findall(source)}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return frozenset(hidden)
    modules = _module_names(tree)
    found: set[str] = set(_held_as_values(tree, modules)) | hidden
    found.update(_namespaces_as_values(tree))
    found.update(_environment_changed(tree, modules))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(_module(alias.name) for alias in node.names if _forbidden(alias.name))
            found.update(
                f"imports the test module `{alias.name}`"
                for alias in node.names
                if _test_module(alias.name)
            )
        elif isinstance(node, ast.ImportFrom):
            found.update(_imported(node))
        elif isinstance(node, ast.Attribute):
            found.update(_attribute(node, modules))
        elif isinstance(node, ast.Name) and node.id in CALLS:
            found.add(f"calls `{node.id}`")
        elif isinstance(node, ast.Name) and node.id in NAMES:
            found.add(f"names `{node.id}`")
        elif isinstance(node, ast.Call):
            found.update(_by_name(node, modules))
        elif isinstance(node, ast.Constant) and node.value in ATTRIBUTES:
            found.add(f"names `{node.value}`")  # vars(...)["_getframe"], a getattr chain
        elif isinstance(node, ast.Constant) and _names_an_internal(node.value):
            found.add(f"names `{node.value}`")  # pydoc.locate("os._exit"), a module's key
        elif isinstance(node, ast.Subscript) and _namespace(node.value):
            key = node.slice.value if isinstance(node.slice, ast.Constant) else None
            if not isinstance(key, str):
                found.add("looks up a variable by a computed name")
            elif key in _HELD | REACHING:
                found.add(f"looks up `{key}` in a namespace")  # vars(typing)["sys"]
        if isinstance(node, ast.Attribute | ast.Name) and isinstance(node.ctx, ast.Store):
            name = node.attr if isinstance(node, ast.Attribute) else node.id
            if name in STORED:
                found.add(f"sets `{name}`")
        if isinstance(node, ast.BinOp | ast.Call | ast.Subscript) or (
            isinstance(node, ast.JoinedStr) and len(node.values) > 1
        ):
            spelled = static_text(node)
            if spelled in _SPELLED or (spelled is not None and _names_an_internal(spelled)):
                found.add(f"names `{spelled[:80]}` in pieces")
    return frozenset(found)


def _hidden_character(character: str) -> str:
    kind = "a bidirectional control" if character >= "\u202a" else "a control character"
    return f"holds {kind} (U+{ord(character):04X})"


def _environment_changed(tree: ast.Module, modules: dict[str, str]) -> list[str]:
    """`os.environ` (or a name `from os import environ` binds) used other than read: set,
    deleted, updated, passed or held."""
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    imported = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module in ("os", "posix")
        for alias in node.names
        if alias.name in _ENVIRONMENT
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in _ENVIRONMENT:
            base = node.value
            module = modules.get(base.id, base.id) if isinstance(base, ast.Name) else ""
            environment = module in ("os", "posix")
        else:
            environment = isinstance(node, ast.Name) and node.id in imported
        parent = parents.get(id(node))
        if environment and parent is not None and not _read(node, parent):
            found.append("changes `os.environ`")
    return found


def _read(node: ast.AST, parent: ast.AST) -> bool:
    """Whether `parent` only reads `node`, a mapping: `m[k]`, `m.get(k)`, `k in m`, a copy."""
    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
        return True  # the name bound again, the mapping untouched
    if isinstance(parent, ast.Subscript):
        return isinstance(parent.ctx, ast.Load)
    if isinstance(parent, ast.Attribute):
        return parent.attr in _ENVIRONMENT_READS
    if isinstance(parent, ast.Compare):
        return node is not parent.left
    if isinstance(parent, ast.Call):
        return isinstance(parent.func, ast.Name) and parent.func.id in _COPIED_BY
    if isinstance(parent, ast.For | ast.comprehension):
        return node is parent.iter
    return isinstance(parent, ast.Dict)  # {**os.environ, "A": "1"}: a copy


def _held_as_values(tree: ast.Module, modules: dict[str, str]) -> list[str]:
    """Modules of `_HELD` and the by-name builtins used other than as `module.name` or as
    what is called: passed, stored or returned, they reach attributes unseen."""
    used = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    # getattr(os, "path"): the name is checked there (`_by_name`).
    named = {
        id(n.args[0])
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and _call_name(n) in _BY_NAME and n.args
    }
    allowed = used | called | named
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            module = modules.get(node.id)
            if module in _HELD and id(node) not in allowed:
                found.append(f"holds the module `{module}` as a value")
        if isinstance(node, ast.Name | ast.Attribute) and id(node) not in called:
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in _BY_NAME:
                found.append(f"passes `{name}` as a value")
    return found


def _names_an_internal(value: object) -> TypeGuard[str]:
    """A string that names the runner's modules, or an object by a dotted path through a
    forbidden attribute (`"sys.modules"`, `"os._exit"`)."""
    if not isinstance(value, str) or len(value) > 200:
        return False
    if value.startswith(_PRIVATE_PREFIX):
        return True
    # The whole string, or each replacement field of a format string ("{0.sys.modules}"),
    # where a field may read no dunder either (`{0.__init__.__globals__}`).
    fields = _FIELD.findall(value) if "{" in value else []
    special = ATTRIBUTES | REACHING | OS_ATTRIBUTES | SYS_ATTRIBUTES
    return any(
        _DOTTED.fullmatch(path) is not None
        and any(
            part in special or (path in fields and part.startswith("__"))
            for part in re.split(r"[.\[\]]", path)[1:]
        )
        for path in [value, *fields]
    )


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _namespace(node: ast.expr) -> bool:
    """`globals()`, `locals()`, `vars(...)` or `x.__dict__`: variables looked up by name."""
    if isinstance(node, ast.Attribute):
        return node.attr == "__dict__"
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _NAMESPACES
    )


def _namespaces_as_values(tree: ast.Module) -> list[str]:
    """`globals()` and `locals()` (or `vars()`) used other than subscripted by a constant:
    `.get(name)`, `.items()` reach what the subscript check reads."""
    subscripted = {
        id(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant)
    }
    return [
        f"uses `{node.func.id}()` as a value"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and (node.func.id in ("globals", "locals") or (node.func.id == "vars" and not node.args))
        and id(node) not in subscripted
    ]


def _module_names(tree: ast.Module) -> dict[str, str]:
    """Names the file binds to modules: `import os as o` (o -> os), then `x = o` (x -> os)."""
    modules = {
        alias.asname or alias.name.split(".")[0]: alias.name if alias.asname else top
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        for top in [alias.name.split(".")[0]]
    }
    aliases = [
        (target.id, node.value.id)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name)
        for target in node.targets
        if isinstance(target, ast.Name)
    ]
    for _ in range(3):  # chains of aliases: y = x = os
        modules.update((name, modules[value]) for name, value in aliases if value in modules)
    return modules


def _from_constants(node: ast.expr, modules: dict[str, str]) -> bool:
    """Whether `node` computes a value from constants alone (`"tixe_"[::-1]`, `chr(95) + ...`):
    a name nobody needs to compute, written so that it cannot be read."""
    if isinstance(node, ast.Constant):
        return False
    names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    return all(n in _PURE or n in modules for n in names) and any(
        isinstance(n, ast.Constant) for n in ast.walk(node)
    )


def static_text(node: ast.expr) -> str | None:
    """The string an expression of string constants makes (`"_" + "exit"`, `"".join([...])`,
    an f-string of constants), or None."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = static_text(node.left), static_text(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        return _sliced(static_text(node.value), node.slice)  # "tixe_"[::-1]
    if isinstance(node, ast.JoinedStr):
        parts = [
            static_text(v.value if isinstance(v, ast.FormattedValue) else v) for v in node.values
        ]
        return None if None in parts else "".join(p for p in parts if p is not None)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "join"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.List | ast.Tuple)
    ):
        glue = static_text(node.func.value)
        parts = [static_text(e) for e in node.args[0].elts]
        if glue is None or None in parts:
            return None
        return glue.join(p for p in parts if p is not None)
    return None


def _sliced(text: str | None, part: ast.Slice) -> str | None:
    """`text[start:stop:step]` where each bound is an integer constant or absent."""
    bounds = [part.lower, part.upper, part.step]
    values = [_integer(b) for b in bounds]
    if text is None or any(
        b is not None and v is None for b, v in zip(bounds, values, strict=True)
    ):
        return None
    start, stop, step = values
    if step == 0:
        return None
    return text[start:stop:step]


def _integer(node: ast.expr | None) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _integer(node.operand)
        return None if value is None else -value
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _forbidden(module: str) -> bool:
    top = module.split(".")[0]
    return (
        top in MODULES
        or top.startswith(_PRIVATE_PREFIX)
        or any(module == sub or module.startswith(sub + ".") for sub in SUBMODULES)
    )


def _test_module(module: str) -> bool:
    """A module of the tests (`test_calc`, `tests.test_x`, `conftest`): a fix never imports
    one, and its names are what the tests judge with."""
    last = module.split(".")[-1]
    return last.startswith("test_") or last.endswith("_test") or last in ("conftest", "tests")


def _module(name: str) -> str:
    top = name.split(".")[0]
    return f"imports `{top if top in MODULES else name}`"


def _imported(node: ast.ImportFrom) -> list[str]:
    module = node.module or ""
    if _forbidden(module):
        return [_module(module)]
    if _test_module(module) or any(_test_module(a.name) for a in node.names):
        return [f"imports from the tests: `{module or '.'}`"]
    found = [_module(f"{module}.{a.name}") for a in node.names if _forbidden(f"{module}.{a.name}")]
    found += [
        f"imports `{a.name}` through `{module}`"
        for a in node.names
        if a.name in _REEXPORTED and a.name != module.split(".")[-1]
    ]
    special = {"os": OS_ATTRIBUTES, "posix": OS_ATTRIBUTES, "sys": SYS_ATTRIBUTES}.get(module)
    refused = ATTRIBUTES | REACHING | OF_MODULE.get(module, frozenset()) | (special or set())
    return found + [f"uses `{module}.{a.name}`" for a in node.names if a.name in refused]


def _attribute(node: ast.Attribute, modules: dict[str, str]) -> list[str]:
    if node.attr in ATTRIBUTES | REACHING:
        return [f"uses `.{node.attr}`"]
    base = node.value
    module = modules.get(base.id, base.id) if isinstance(base, ast.Name) else ""
    if node.attr in OS_ATTRIBUTES and module in ("os", "posix"):
        return [f"uses `os.{node.attr}`"]
    if node.attr in SYS_ATTRIBUTES and module == "sys":
        return [f"uses `sys.{node.attr}`"]
    if node.attr in OF_MODULE.get(module, ()):
        return [f"uses `{module}.{node.attr}`"]
    if node.attr == "__dict__" and (module in _LOOKED_UP or _is_module_name(base, modules)):
        return [f"looks up an attribute of `{module}` by a computed name"]
    held = node.attr in _HELD and node.attr != module.split(".")[-1]  # not timeit.timeit
    if isinstance(base, ast.Name) and base.id in modules and held:
        return [f"reaches `{node.attr}` through `{module}`"]  # shutil.os, logging.threading
    return []


def _is_module_name(node: ast.expr, modules: dict[str, str]) -> bool:
    """Whether `node` is a name the file binds to a module (`typing`, `o` for `import os as o`)."""
    return isinstance(node, ast.Name) and (node.id in modules or node.id in _LOOKED_UP)


def _by_name(call: ast.Call, modules: dict[str, str]) -> list[str]:
    """getattr(sys, "_getframe"), importlib's import_module("gc"), or getattr(sys, name)."""
    name = _call_name(call)
    target = call.args[0] if call.args else None
    module = modules.get(target.id, target.id) if isinstance(target, ast.Name) else ""
    if name == "vars" and target is not None and _is_module_name(target, modules):
        return [f"looks up an attribute of `{module}` by a computed name"]
    if name not in _BY_NAME or not call.args:
        return []
    first = name in _NAME_FIRST or len(call.args) == 1
    named = call.args[0] if first else call.args[1]
    text = static_text(named)
    if text in ATTRIBUTES | REACHING | OS_ATTRIBUTES | SYS_ATTRIBUTES or (
        text is not None and name == "import_module" and _forbidden(text)
    ):
        return [f"uses `{text}` by name"]
    if text in STORED and name in ("setattr", "__setattr__"):
        return [f"sets `{text}` by name"]
    if text is not None and not first and text.isidentifier():
        # getattr(typing, "__dict__") reaches what typing.__dict__ does.
        spelled = ast.Attribute(value=call.args[0], attr=text, ctx=ast.Load())
        if found := _attribute(spelled, modules):
            return found
        if text in _ENVIRONMENT and module in ("os", "posix"):
            return ["reaches `os.environ` by name"]  # what is done with it goes unread
    if _from_constants(named, modules):
        return [f"computes a name for `{name}` from constants"]
    if text is not None:
        return []
    if not first and module in _LOOKED_UP:
        return [f"looks up an attribute of `{module}` by a computed name"]
    if name in _COMPUTED_OK:
        return []
    # What it looks up, in what: another computed lookup already in the file excuses nothing.
    looked_up = ", ".join(ast.unparse(arg) for arg in call.args[: 1 if first else 2])
    return [f"looks up a name computed at run time: `{name}({looked_up[:80]})`"]
