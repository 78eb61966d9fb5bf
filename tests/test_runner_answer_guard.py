"""answer_guard.py: while a line the answer wrote runs, acts no fix needs are refused as they
happen, however they are spelled; what the project's own code and the standard library's
builders do stays allowed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from project_support import make_project

from cyclefix.models.scripted import ScriptedBackend
from cyclefix.refine import RefineConfig, fix
from cyclefix.refine.verify import written_lines

MODULE = """\
import ast, collections, dataclasses, gc, socket, timeit, typing


def runs_text():
    return timeit.timeit("1 + 1", number=1)


def evaluates_an_annotation():
    class Hinted:
        x: "__import__('os').getpid()"
    return typing.get_type_hints(Hinted)


def walks_the_stack():
    import logging, string
    frame = logging.currentframe()
    return string.Formatter().get_field("0.f_back", (frame,), {})


def formats_out_a_frame():
    import string
    try:
        1 / 0
    except ZeroDivisionError as exc:
        return string.Formatter().vformat("{0.__traceback__.tb_frame}", (exc,), {})


def logs_a_message():
    import logging
    logging.getLogger("answer").warning("logged")


def formats_a_traceback():
    import traceback
    try:
        1 / 0
    except ZeroDivisionError:
        return traceback.format_exc()


def builds_an_enum():
    import enum
    return enum.Enum("Color", "RED GREEN").RED


def walks_the_heap():
    return len(gc.get_objects())


def plants_a_module(folder):
    with open(f"{folder}/planted.py", "w") as handle:
        handle.write("x = 1")


def plants_a_module_by_descriptor(folder):
    import os
    os.close(os.open(f"{folder}/planted.py", os.O_WRONLY | os.O_CREAT))


def plants_a_module_by_bytes(folder):
    import os
    with open(os.fsencode(f"{folder}/planted.py"), "w") as handle:
        handle.write("x = 1")


def plants_a_module_by_link(folder):
    import os
    with open(f"{folder}/planted.txt", "w") as handle:
        handle.write("x = 1")
    os.link(f"{folder}/planted.txt", f"{folder}/planted.py")


def plants_an_archive(folder):
    import sys, zipfile
    with zipfile.ZipFile(f"{folder}/lib.zip", "w") as archive:
        archive.writestr("zipped.py", "VALUE = 1")
    sys.path.insert(0, f"{folder}/lib.zip")
    import zipped
    return zipped.VALUE


def plants_for_later(folder):
    import sys, zipfile
    with zipfile.ZipFile(f"{folder}/later.bin", "w") as archive:
        archive.writestr("later_zipped.py", "VALUE = 1")
    sys.path.insert(0, f"{folder}/later.bin")


def plants_through_a_descriptor(folder):
    import os
    os.mknod(f"{folder}/described.py")
    descriptor = os.open(f"{folder}/described.py", os.O_RDONLY)
    with open(f"/proc/self/fd/{descriptor}", "w") as handle:
        handle.write("VALUE = 1")


def runs_text_deep_down():
    import functools, deep_library  # 700 frames of a library between the answer and the act
    return deep_library.down(700, functools.partial(timeit.timeit, "1 + 1", number=1))


def connects_outside(path):
    socket.socket(socket.AF_UNIX).connect(path)


def builds_a_namedtuple():
    return collections.namedtuple("Point", "x y")(1, 2)


def builds_a_dataclass():
    @dataclasses.dataclass
    class Point:
        x: int
    return Point(1)


def imports_lazily():
    import decimal
    return decimal.Decimal("1.5")


def imports_a_generating_library():
    import generating_library  # a library that builds code when imported (attrs, pydantic)
    return generating_library.VALUE


def reads_a_literal():
    return ast.literal_eval("[1, 2]")


def writes_data(folder):
    with open(f"{folder}/data.txt", "w") as handle:
        handle.write("x")
"""

PROBE = """\
import json, sys
sys.path.insert(0, {folder!r})
from cyclefix.runner import answer_guard
answer_guard.install({{{module!r}: [[1, {lines}]]}}, [{folder!r}])
import answer
outcomes = {{}}
for name, args in {calls!r}:
    try:
        getattr(answer, name)(*args)
        outcomes[name] = "allowed"
    except RuntimeError as exc:
        outcomes[name] = str(exc)
    except OSError:
        outcomes[name] = "allowed"  # the act itself was let through
import timeit
outcomes["outside the answer"] = "allowed" if timeit.timeit("1", number=1) >= 0 else ""
try:
    outcomes["imported later"] = "allowed" if __import__("later_zipped") else ""
except RuntimeError as exc:
    outcomes["imported later"] = str(exc)
except ImportError:
    pass  # nothing was planted for later
print(json.dumps(outcomes))
"""


def outcomes(tmp_path: Path, calls: list[tuple[str, list[str]]]) -> dict[str, str]:
    """Each call of the answer's module, in a fresh interpreter with the guard installed."""
    module = tmp_path / "answer.py"
    module.write_text(MODULE)
    (tmp_path / "generating_library.py").write_text("exec('VALUE = 1')\n")
    (tmp_path / "deep_library.py").write_text(
        "def down(depth, then):\n    return down(depth - 1, then) if depth else then()\n"
    )
    probe = PROBE.format(
        folder=str(tmp_path), module=str(module), lines=len(MODULE.splitlines()), calls=calls
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    result: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    ("call", "refused"),
    [
        (("runs_text", []), "run code no file holds"),
        (("evaluates_an_annotation", []), "run code no file holds"),
        (("walks_the_heap", []), "use gc.get_objects"),
        (("walks_the_stack", []), "use sys._getframe"),
        (("formats_out_a_frame", []), "use object.__getattr__"),
        (("plants_a_module", ["{tmp}"]), "use open"),
        (("plants_a_module_by_descriptor", ["{tmp}"]), "use open"),
        (("plants_a_module_by_bytes", ["{tmp}"]), "use open"),
        (("plants_a_module_by_link", ["{tmp}"]), "use os.link"),
        (("plants_an_archive", ["{tmp}"]), "run code it planted for an import"),
        (("plants_through_a_descriptor", ["{tmp}"]), "use open"),
        (("runs_text_deep_down", []), "run code no file holds"),
        (("connects_outside", ["/nonexistent-cyclefix/host.sock"]), "use socket.connect"),
    ],
)
def test_what_the_answer_s_lines_may_not_do_is_refused(
    tmp_path: Path, call: tuple[str, list[str]], refused: str
) -> None:
    name, args = call
    found = outcomes(tmp_path, [(name, [a.format(tmp=tmp_path) for a in args])])
    assert refused in found[name]
    assert found["outside the answer"] == "allowed"


def test_code_the_answer_planted_is_refused_whoever_imports_it(tmp_path: Path) -> None:
    found = outcomes(tmp_path, [("plants_for_later", [str(tmp_path)])])
    assert found["plants_for_later"] == "allowed"  # writing an archive is no act of its own
    assert "run code it planted for an import" in found["imported later"]


def test_builders_imports_literals_and_data_files_stay_allowed(tmp_path: Path) -> None:
    calls = [
        ("builds_a_namedtuple", []),
        ("builds_a_dataclass", []),
        ("imports_lazily", []),
        ("imports_a_generating_library", []),
        ("formats_a_traceback", []),
        ("logs_a_message", []),  # logging reads frames for its own use
        ("builds_an_enum", []),
        ("reads_a_literal", []),
        ("writes_data", [str(tmp_path)]),
        ("connects_outside", [str(tmp_path / "inside.sock")]),  # the run's own folder
    ]
    assert set(outcomes(tmp_path, calls).values()) == {"allowed"}


def test_the_lines_an_answer_wrote_are_those_the_file_did_not_have() -> None:
    before = textwrap.dedent(
        """\
        def add(a, b):
            return a - b


        def sub(a, b):
            return a - b
        """
    )
    after = before.replace("    return a - b\n\n", "    x = a\n    return x + b\n\n", 1)
    assert written_lines(before, after) == ((2, 3),)
    assert written_lines(before, before) == ()
    assert json.dumps(dict([("calc.py", written_lines(before, after))])) == '{"calc.py": [[2, 3]]}'


# A right answer that makes more calls than the tracer records per test (trace.py's
# CALL_EVENTS_PER_TEST): the tracer steps aside from under the answer's lines.
MANY_CALLS = """\
```python
def add(a, b):
    def step(total):
        return total

    total = 0
    for _ in range(60_000):
        total = step(total)
    return a + b + total
```
"""


def test_a_right_answer_that_outlasts_the_tracer_is_a_fix(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "calc",
        {
            # No one-token edit of `0` is `a + b`: the answer is what is tested.
            "calc.py": "def add(a, b):\n    return 0\n",
            "test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        },
    )
    config = RefineConfig(rounds=1, budget_seconds=60, extend_to_budget=False, resamples=0)
    result = fix(project, ScriptedBackend([MANY_CALLS]), config=config)
    assert result.status == "fixed", [a.feedback for a in result.attempts]
