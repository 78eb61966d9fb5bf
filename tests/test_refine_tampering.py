"""An answer that reaches the test run's machinery or the interpreter's internals is turned
away before any test runs (refine.tampering)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, fix
from cyclefix.refine.round import TESTED
from cyclefix.refine.tampering import tampering

CONFIG = RefineConfig(rounds=1, budget_seconds=60, extend_to_budget=False, resamples=0)
ORIGINAL = "def add(a, b):\n    return a - b\n"
# Answers of a red-team pass: each made a wrong `add` (a * b) read as a verified fix.
HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
RED_TEAM = sorted(path.stem for path in HOSTILE.glob("*.py"))


def add_doing(*lines: str) -> str:
    return "def add(a, b):\n" + "".join(f"    {line}\n" for line in lines) + "    return a + b\n"


@pytest.mark.parametrize("name", RED_TEAM)
def test_the_red_teams_answers_reach_the_test_run(name: str) -> None:
    assert tampering(ORIGINAL, (HOSTILE / f"{name}.py").read_text())


@pytest.mark.parametrize(
    ("lines", "phrase"),
    [
        (["import gc", "gc.collect()"], "imports `gc`"),
        (["import sys", "sys._getframe(1)"], "uses `._getframe`"),
        (["import sys", "sys.modules['x'] = None"], "uses `sys.modules`"),
        (["from os import _exit"], "uses `os._exit`"),
        (["import os", "os.kill(1, 9)"], "uses `os.kill`"),
        (["import os as o", "o.system('true')"], "uses `os.system`"),
        (["from sys import modules"], "uses `sys.modules`"),
        (["exec('x = 1')"], "calls `exec`"),
        (["__import__('g' + 'c')"], "calls `__import__`"),
        (["import sys", "getattr(sys, '_getframe')"], "uses `_getframe` by name"),
        (["import sys", "getattr(sys, str(a))"], "by a computed name"),
        (["import sys", "getattr(sys, 'mod' + 'ules')"], "uses `modules` by name"),
        (["import os as o", "getattr(o, '_' + 'exit')(0)"], "names `_exit` in pieces"),
        (["import os as o", "getattr(o, str(a))"], "looks up an attribute of `os`"),
        (["getattr(a, ''.join(['f_', 'back']))"], "names `f_back` in pieces"),
        (["import operator", "operator.attrgetter('f_back')(a)"], "uses `f_back` by name"),
        (["object.__getattribute__(a, f'gi_{\"frame\"}')"], "uses `gi_frame` by name"),
        (["__builtins__['__import__']('gc')"], "names `__builtins__`"),
        (["__loader__.load_module('gc')"], "names `__loader__`"),
        (["import os", "os.sys.modules['gc']"], "uses `.sys`"),
        (["import random", "random._os.getpid()"], "uses `._os`"),
        (["import pickle", "pickle.loads(b'')"], "imports `pickle`"),
        (["import runpy"], "imports `runpy`"),
        (["import os", "os.chmod('/home/user/x', 0o777)"], "uses `.chmod`"),
        (["import os", "os.utime('/home/user/x', (0, 0))"], "uses `.utime`"),
        (["import os", "os.setxattr('/home/user/x', 'user.a', b'x')"], "uses `.setxattr`"),
        (["import pathlib", "pathlib.Path('x').symlink_to('/home')"], "uses `.symlink_to`"),
        (["globals()['__snitliub__'[::-1]]"], "looks up a variable by a computed name"),
        (["import os", "x = os", "getattr(x, str(a))"], "looks up an attribute of `os`"),
        (["getattr(a, 'domhc'[::-1])"], "uses `chmod` by name"),
        (["getattr(a, str(b)[::-1])"], "looks up a name computed at run time"),
        (["getattr(a, ''.join(map(chr, [95, 101])))"], "computes a name for `getattr`"),
        (["import unittest.mock as m", "m.ANY"], "imports `unittest`"),
        (["try:", "    1 / 0", "except ZeroDivisionError as e:", "    e.__traceback__"],
         "uses `.__traceback__`"),
        (["().__class__.__mro__[1].__subclasses__()"], "uses `.__subclasses__`"),
        (["import logging.handlers"], "imports `logging.handlers`"),
        (["import sys", "vars(sys)['mod' + 'ules']"], "by a computed name"),
        (["import sys", "sys.__dict__['modules']"], "by a computed name"),
        (["globals()['__builtins__']"], "names `__builtins__`"),
        (["from logging import handlers"], "imports `logging.handlers`"),
        (["import asyncio"], "imports `asyncio`"),
        # Found by a fourth red-team pass (stop 42): each reached the plugin's signer, changed
        # files outside the copy or deselected the failing tests.
        (["getattr(a, str(b), None)"], "looks up a name computed at run time"),
        (["name = 'emarf_bt'[::-1]", "getattr(a, name)"], "looks up a name computed at run time"),
        (["import sys", "box = [sys][0]"], "holds the module `sys` as a value"),
        (["import os", "def f(m=os):", "    return m"], "holds the module `os` as a value"),
        (["import os, functools", "functools.reduce(getattr, ['chmod'], os)"],
         "passes `getattr` as a value"),
        (["import operator", "f = operator.attrgetter"], "passes `attrgetter` as a value"),
        (["import pydoc", "pydoc.locate('x')"], "imports `pydoc`"),
        (["x = 'os._exit'"], "names `os._exit`"),
        (["x = 'sys.meta_path'"], "names `sys.meta_path`"),
        (["x = '0.f_back.f_globals'"], "names `0.f_back.f_globals`"),
        (["x = '0[1].tb_frame'"], "names `0[1].tb_frame`"),
        (["x = '_cyclefix_pytest_plugin'"], "names `_cyclefix_pytest_plugin`"),
        (["import _cyclefix_protocol"], "imports `_cyclefix_protocol`"),
        (["import traceback", "traceback.walk_stack(None)"], "uses `.walk_stack`"),
        (["import pathlib", "pathlib.Path('/home/user/x').touch()"], "uses `.touch`"),
        (["import os", "os.abort()"], "uses `os.abort`"),
        (["import concurrent.futures"], "imports `concurrent`"),
        # Found by a sixth red-team pass (stop 43): the plugin's signer, a process, code run
        # from text later, tests made no-ops.
        (["import typing", "vars(typing)['sys']"], "looks up `sys` in a namespace"),
        (["'{0.sys.modules}'.format(a)"], "names `{0.sys.modules}`"),
        (["import shutil", "shutil.os.getpid()"], "reaches `os` through `shutil`"),
        (["import logging", "logging.threading.Thread"], "reaches `threading` through `logging`"),
        (["import timeit"], "imports `timeit`"),
        (["a.__class__ = int"], "sets `__class__`"),
        (["setattr(a, '__class__', int)"], "sets `__class__` by name"),
        (["class Settings:", "    __annotations__ = {}"], "sets `__annotations__`"),
        (["import dataclasses", "class S:", "    x: int", "S.__annotations__['y=1'] = int"],
         "uses `.__annotations__`"),
        # Found by a seventh red-team pass (stop 44): each reached the plugin's writer or the
        # builtins.
        (["import typing", "vars(typing).get('sys')"], "looks up an attribute of `typing`"),
        (["import typing", "typing.__dict__.get('sys')"], "looks up an attribute of `typing`"),
        (["globals().get('sys')"], "uses `globals()` as a value"),
        (["x = ('{0.s' + 'ys.modules}').format(a)"], "names `{0.sys.modules}` in pieces"),
        (["x = '{0.__class__.__base__}'.format(a)"], "names `{0.__class__.__base__}`"),
        (["import string", "string.Formatter().vformat('{0}', (a,), {})"], "uses `.Formatter`"),
        (["from logging import threading"], "imports `threading` through `logging`"),
        (["from http.client import socket"], "imports `socket` through `http.client`"),
        (["from site import builtins"], "imports `builtins` through `site`"),
        (["len.__self__.abs = abs"], "uses `.__self__`"),
        # Found by an eighth red-team pass (stop 44).
        (["import typing", "getattr(typing, '__dict__').get('sys')"],
         "looks up an attribute of `typing`"),
        (["import logging", "getattr(logging, 'threading')"],
         "reaches `threading` through `logging`"),
        (["f = vars(type(a)).get('__slabolg__'[::-1])"], "names `__globals__` in pieces"),
        (["import test_calc", "test_calc.abs = lambda x: 0.0"],
         "imports the test module `test_calc`"),
        (["from tests.test_calc import helper"], "imports from the tests"),
        # Found by a ninth red-team pass: programs started, code run later, importable code
        # planted (a zip archive put on an import path), the environment a program reads.
        (["import os", "os.spawnlp(os.P_WAIT, 'sh', 'sh')"], "uses `os.spawnlp`"),
        (["from os import spawnvpe"], "uses `os.spawnvpe`"),
        (["import imaplib", "imaplib.IMAP4_stream('sh')"], "uses `.IMAP4_stream`"),
        (["import webbrowser", "webbrowser.open('x')"], "imports `webbrowser`"),
        (["import doctest", "doctest.run_docstring_examples(add, {})"], "imports `doctest`"),
        (["import weakref", "weakref.finalize(a, print)"], "uses `weakref.finalize`"),
        (["from weakref import finalize"], "uses `weakref.finalize`"),
        (["import sys", "sys.path.insert(0, 'x.zip')"], "uses `sys.path`"),
        (["from sys import path"], "uses `sys.path`"),
        (["import sys", "getattr(sys, 'path').append('x.zip')"], "uses `sys.path`"),
        (["import email", "email.__path__.append('x.zip')"], "uses `.__path__`"),
        (["__path__.append('x.zip')"], "names `__path__`"),
        (["import email", "email.__spec__.submodule_search_locations.append('x.zip')"],
         "uses `.submodule_search_locations`"),
        (["import site", "site.addsitedir('x')"], "uses `.addsitedir`"),
        (["import site", "site.main()"], "uses `site.main`"),
        (["import os", "os.mknod('m.py')"], "uses `os.mknod`"),
        (["import os", "os.environ['BROWSER'] = 'sh'"], "changes `os.environ`"),
        (["import os", "os.environ.update(BROWSER='sh')"], "changes `os.environ`"),
        (["import os", "del os.environ['HOME']"], "changes `os.environ`"),
        (["from os import environ as e", "e.setdefault('BROWSER', 'sh')"],
         "changes `os.environ`"),
        (["import os", "env = os.environ", "env['BROWSER'] = 'sh'"], "changes `os.environ`"),
        (["import os", "getattr(os, 'environ')['BROWSER'] = 'sh'"],
         "reaches `os.environ` by name"),
        (["import os", "os.putenv('BROWSER', 'sh')"], "uses `os.putenv`"),
    ],
)  # fmt: skip
def test_each_way_into_the_test_run_is_named(lines: list[str], phrase: str) -> None:
    found = tampering(ORIGINAL, add_doing(*lines))
    assert any(phrase in item for item in found), found


@pytest.mark.parametrize(
    "lines",
    [
        ["import math", "math.floor(a)"],
        ["import os", "os.path.join('a', 'b')"],
        ["getattr(a, 'real')", "hasattr(a, str(b))"],
        ["import os", "os.path.join(os.sep, 'x')", "getattr(os, 'sep')"],
        ["import os.path", "os.path.basename('a.b')"],
        ["'a.b.c'.split('.')", "'logging.handlers'", "'os.path.join'"],
        ["import sys", "sys.maxsize"],
        ["modules = {}", "modules.get('x')"],
        ["import platform", "platform.system()"],
        ["import logging", "logging.getLogger(__name__)"],
        ["a.kill()"],
        ["import os", "os.path.join(str(a), 'sys')"],
        ["getattr(a, 'ab', None)"],
        ["' '.join(['system', 'kill'])"],
        ["print(f'code')", "'co' 'de'"],
        ["import pprint", "pprint.pprint(a)", "a.__class__.__name__"],
        ["'{0.real} {1}'.format(a, b)", "vars(a)['x']", "import typing", "typing.List"],
        ["'{:.2f} {}'.format(a, b)", "str.format('{}', a)", "'{x}'.format_map({'x': a})"],
        # str.format gives back text, whatever its template reads: only Formatter's hooks
        # hand out the objects (refused above).
        ["t = str(a)", "t.format(b)"],
        ["vars(a).items()", "from os import path", "from collections import abc"],
        ["from functools import partial", "from typing import Any"],
        # Reading the environment, an object's own `path`, a weak reference.
        ["import os", "os.environ['HOME']", "os.environ.get('HOME')", "'HOME' in os.environ"],
        ["import os", "env = dict(os.environ)", "env2 = {**os.environ, 'A': '1'}"],
        ["a.path.append(b)", "a.finalize()", "import weakref", "weakref.ref(a)", "'sys.path'"],
    ],
)
def test_ordinary_code_is_not_tampering(lines: list[str]) -> None:
    assert tampering(ORIGINAL, add_doing(*lines)) == []


@pytest.mark.parametrize("character", ["\x1b", "\x07", "\x0b", "\x7f", "\x9b", "\u202e", "\u2066"])
def test_a_control_character_in_the_answer_is_refused(character: str) -> None:
    # `\x1b[2J` in a comment clears the terminal that shows the diff; U+202E reverses it.
    found = tampering(ORIGINAL, add_doing(f"x = 'a'  # {character}[2J"))
    assert f"(U+{ord(character):04X})" in "; ".join(found), found


def test_a_control_character_is_refused_in_an_answer_that_does_not_parse() -> None:
    assert tampering(ORIGINAL, "def add(a, b:\n    # \u202e\n")


def test_escapes_written_as_text_and_whitespace_are_not_control_characters() -> None:
    assert tampering(ORIGINAL, add_doing(r"x = '\x1b[0m \u202e'", "y = 1\t# a\fb")) == []


def test_a_control_character_the_file_already_held_is_the_projects_own() -> None:
    before = "# \x1b[0m\n" + ORIGINAL
    assert tampering(before, "# \x1b[0m\n" + add_doing("x = 1")) == []


def test_what_the_file_already_used_is_the_projects_own() -> None:
    before = "import inspect\n\n" + add_doing("inspect.signature(add)")
    after = "import inspect\n\n" + add_doing("inspect.signature(add).parameters")
    assert tampering(before, after) == []


@pytest.mark.parametrize("name", RED_TEAM)
def test_a_tampering_answer_never_reaches_the_tests(tmp_path: Path, name: str) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (tmp_path / "calc.py").write_text(ORIGINAL)
    (tmp_path / "test_calc.py").write_text(
        "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    )
    reply = f"```python\n{(HOSTILE / f'{name}.py').read_text()}```\n"
    result = fix(tmp_path, ScriptedBackend([reply]), config=CONFIG)
    assert result.status == "not_fixed"
    # Refused before any test ran (the round's extra answers repeat it: duplicates).
    assert result.attempts[0].verdict == "tampering"
    assert not any(a.verdict in TESTED for a in result.attempts)
    assert "a fix changes what the code computes" in result.attempts[0].feedback
    assert (tmp_path / "calc.py").read_text() == ORIGINAL
