"""select_tests and order_failing_first: which tests to run, read from the import graph."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cyclefix.errors import CyclefixError
from cyclefix.runner import (
    SandboxLimits,
    TestRunResult,
    order_failing_first,
    run_tests,
    select_tests,
)
from cyclefix.runner.select import imported_modules, module_names, with_class_predecessors


def make_project(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


@pytest.fixture
def package_project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path / "proj",
        {
            "pyproject.toml": "",
            "pkg/__init__.py": "",
            "pkg/core.py": "def f():\n    return 1\n",
            "pkg/api.py": "from pkg.core import f\n\ndef g():\n    return f()\n",
            "pkg/unused.py": "X = 1\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/leaf.py": "from .. import core\n",
            "tests/__init__.py": "",
            "tests/test_core.py": "import pkg.core\n\ndef test_f():\n    assert pkg.core.f()\n",
            "tests/test_api.py": "from pkg.api import g\n\ndef test_g():\n    assert g() == 1\n",
            "tests/test_leaf.py": "from pkg.sub import leaf\n\ndef test_leaf():\n    pass\n",
            "tests/test_other.py": "def test_other():\n    pass\n",
            "tests/helpers.py": "from pkg import api\n",
            "tests/test_helped.py": "from .helpers import api\n\ndef test_h():\n    pass\n",
            ".venv/lib/test_in_venv.py": "import pkg.core\n",
            "build/test_built.py": "import pkg.core\n",
        },
    )


def test_changed_module_selects_direct_and_transitive_importers(package_project: Path) -> None:
    selected = select_tests(package_project, [package_project / "pkg" / "core.py"])
    assert set(selected) == {
        "tests/test_core.py",
        "tests/test_api.py",  # through pkg.api
        "tests/test_leaf.py",  # through `from .. import core` in pkg/sub/leaf.py
        "tests/test_helped.py",  # through tests/helpers.py (a non-test module)
    }


def test_changed_module_selects_only_its_importers(package_project: Path) -> None:
    assert select_tests(package_project, [package_project / "pkg" / "api.py"]) == (
        "tests/test_api.py",
        "tests/test_helped.py",
    )


def test_environment_and_build_dirs_are_not_searched(package_project: Path) -> None:
    selected = select_tests(package_project, [package_project / "pkg" / "core.py"])
    assert not any(s.startswith((".venv", "build")) for s in selected)


def test_module_nobody_imports_falls_back_to_the_whole_suite(package_project: Path) -> None:
    assert select_tests(package_project, [package_project / "pkg" / "unused.py"]) == ()


def test_changed_test_file_selects_itself(package_project: Path) -> None:
    assert select_tests(package_project, [package_project / "tests" / "test_other.py"]) == (
        "tests/test_other.py",
    )


def test_changed_conftest_selects_its_folder(package_project: Path) -> None:
    (package_project / "tests" / "conftest.py").write_text("")
    (package_project / "conftest.py").write_text("")
    assert select_tests(package_project, [package_project / "tests" / "conftest.py"]) == ("tests",)
    assert select_tests(package_project, [package_project / "conftest.py"]) == ()


def test_non_python_or_outside_changes_run_everything(
    package_project: Path, tmp_path: Path
) -> None:
    (package_project / "data.json").write_text("{}")
    assert select_tests(package_project, [package_project / "data.json"]) == ()
    outside = tmp_path / "elsewhere.py"
    outside.write_text("")
    assert select_tests(package_project, [outside]) == ()


def test_nothing_changed_means_whole_suite(package_project: Path) -> None:
    assert select_tests(package_project) == ()


def test_src_layout_and_flat_modules(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "proj",
        {
            "pyproject.toml": "",
            "src/mylib/__init__.py": "",
            "src/mylib/text.py": "def up(s):\n    return s.upper()\n",
            "tools.py": "def tool():\n    return 2\n",
            "tests/test_text.py": "from mylib.text import up\n",
            "tests/test_tools.py": "import tools\n",
            "test_top.py": "from mylib import text\n",
        },
    )
    assert select_tests(root, [root / "src" / "mylib" / "text.py"]) == (
        "test_top.py",
        "tests/test_text.py",
    )
    assert select_tests(root, [root / "tools.py"]) == ("tests/test_tools.py",)


def test_unparsable_and_non_utf8_files_do_not_break_selection(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "proj",
        {
            "pyproject.toml": "",
            "mod.py": "def f(:\n",  # a syntax error in the changed module itself
            "latin.py": b"# -*- coding: latin-1 -*-\nNAME = '\xe9t\xe9'\n",
            "broken.py": b"NAME = '\xe9'\n",  # not UTF-8 and no coding cookie
            "tests/test_mod.py": "from mod import f\n",
            "tests/test_latin.py": b"# -*- coding: latin-1 -*-\n# \xe9\nimport latin\n",
            "tests/test_broken.py": "import broken\n",
        },
    )
    assert select_tests(root, [root / "mod.py"]) == ("tests/test_mod.py",)
    assert select_tests(root, [root / "latin.py"]) == ("tests/test_latin.py",)
    assert select_tests(root, [root / "broken.py"]) == ("tests/test_broken.py",)


def test_deleted_module_still_selects_its_importers(package_project: Path) -> None:
    gone = package_project / "pkg" / "gone.py"
    (package_project / "tests" / "test_gone.py").write_text("from pkg.gone import x\n")
    assert select_tests(package_project, [gone]) == ("tests/test_gone.py",)


def test_selection_sees_edits_after_caching(package_project: Path) -> None:
    other = package_project / "tests" / "test_other.py"
    assert "tests/test_other.py" not in select_tests(
        package_project, [package_project / "pkg" / "unused.py"]
    )
    other.write_text("from pkg.unused import X\n\ndef test_other():\n    pass\n")
    assert select_tests(package_project, [package_project / "pkg" / "unused.py"]) == (
        "tests/test_other.py",
    )


def test_explicit_wins_and_accepts_every_spelling(
    package_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(package_project / "tests")
    explicit = [
        str(package_project / "tests" / "test_api.py"),  # absolute
        "test_core.py::test_f",  # relative to the cwd, with a node id
        "tests/test_other.py::test_other",  # relative to the root
        "tests",  # a folder
    ]
    assert select_tests(package_project, [package_project / "pkg" / "core.py"], explicit) == (
        "tests/test_api.py",
        "tests/test_core.py::test_f",
        "tests/test_other.py::test_other",
        "tests",
    )


def test_explicit_missing_or_outside_path_is_a_clear_error(
    package_project: Path, tmp_path: Path
) -> None:
    with pytest.raises(CyclefixError, match=r"no such test file or folder: tests/nope\.py"):
        select_tests(package_project, explicit=["tests/nope.py"])
    outside = tmp_path / "test_outside.py"
    outside.write_text("")
    with pytest.raises(CyclefixError, match="outside the project"):
        select_tests(package_project, explicit=[str(outside)])
    with pytest.raises(CyclefixError, match="no such project folder"):
        select_tests(tmp_path / "missing")


def test_module_names_and_imports(package_project: Path) -> None:
    leaf = package_project / "pkg" / "sub" / "leaf.py"
    assert module_names(leaf, package_project) == ("pkg.sub.leaf", "sub.leaf", "leaf")
    init = package_project / "pkg" / "__init__.py"
    assert module_names(init, package_project) == ("pkg",)
    assert imported_modules(leaf, package_project) == {"pkg", "pkg.core"}
    helped = package_project / "tests" / "test_helped.py"
    assert imported_modules(helped, package_project) == {"tests.helpers", "tests.helpers.api"}


def test_order_failing_first() -> None:
    tests = ("tests/test_a.py", "tests/test_b.py", "tests/test_c.py")
    ordered = order_failing_first(tests, ["tests/test_c.py::test_x", "tests/elsewhere.py::t"])
    assert ordered == (
        "--cyclefix-first=tests/test_c.py::test_x",
        "tests/test_c.py",
        "tests/test_a.py",
        "tests/test_b.py",
    )
    assert order_failing_first(tests, []) == tests
    # The whole suite: every previously failing test is in it.
    assert order_failing_first((), ["t/test_a.py::x", "t/test_a.py::x"]) == (
        "--cyclefix-first=t/test_a.py::x",
    )
    # Node-id args and folders.
    assert order_failing_first(("t/test_a.py::a", "t"), ["t/test_b.py::b"]) == (
        "--cyclefix-first=t/test_b.py::b",
        "t",
        "t/test_a.py::a",
    )


def test_selection_is_fast_on_a_few_hundred_files(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"pyproject.toml": ""}
    for i in range(300):
        files[f"pkg{i % 10}/__init__.py"] = ""
        files[f"pkg{i % 10}/mod{i}.py"] = (
            f"import os\nfrom pkg{i % 10} import mod{max(i - 10, 0)}\n"
        )
        files[f"tests/test_{i}.py"] = f"from pkg{i % 10}.mod{i} import *\n"
    root = make_project(tmp_path / "big", files)
    started = time.monotonic()
    selected = select_tests(root, [root / "pkg0" / "mod0.py"])
    assert time.monotonic() - started < 5.0
    # mod0 is imported by every pkg0 module through the chain mod10 -> mod0, mod20 -> mod10...
    assert {f"tests/test_{i}.py" for i in range(0, 300, 10)} <= set(selected)
    assert "tests/test_1.py" not in selected


@pytest.fixture
def reexporting_package(tmp_path: Path) -> Path:
    return make_project(
        tmp_path / "proj",
        {
            "pyproject.toml": "",
            "src/shop/__init__.py": "from .cart import Cart\nfrom shop.money import *\n",
            "src/shop/money.py": "def percent_of(c, p):\n    return c * p // 100\n",
            "src/shop/cart.py": "from . import money\n\nclass Cart:\n    pass\n",
            "src/shop/unrelated.py": "X = 1\n",
            "tests/test_by_name.py": "from shop import percent_of\n",
            "tests/test_by_package.py": "import shop\n",
            "tests/test_by_class.py": "from shop import Cart\n",
            "tests/test_unrelated.py": "from shop.unrelated import X\n",
        },
    )


def test_a_module_reexported_by_its_package_selects_the_package_importers(
    reexporting_package: Path,
) -> None:
    money = reexporting_package / "src" / "shop" / "money.py"
    assert set(select_tests(reexporting_package, [money])) == {
        "tests/test_by_name.py",  # `from shop import percent_of` (star re-export)
        "tests/test_by_package.py",  # `import shop`
        "tests/test_by_class.py",  # through `shop/__init__` importing cart, which imports money
        "tests/test_unrelated.py",  # importing shop.unrelated runs shop/__init__.py first
    }


def test_the_invoicing_example_selects_its_tests_for_the_helper_module() -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "invoicing"
    selected = select_tests(example, [example / "invoicing" / "money.py"])
    assert selected == ("tests/test_invoice.py",)


@pytest.fixture
def ordered_project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path / "proj",
        {
            "pyproject.toml": "",
            "calc.py": "def half(n):\n    return n // 2\n",
            "test_a.py": "from calc import half\n\n"
            + "".join(f"def test_a{i}():\n    assert half({2 * i}) == {i}\n\n" for i in range(4)),
            "test_b.py": "from calc import half\n\ndef test_odd():\n    assert half(3) == 1.5\n",
        },
    )


def quick_run(root: Path, tests: tuple[str, ...], stop: bool) -> TestRunResult:
    limits = SandboxLimits(per_test_timeout=5.0, run_timeout=60.0)
    return run_tests(root, tests, limits=limits, autoload_plugins=False, stop_on_first_failure=stop)


def test_a_failing_test_run_first_stops_the_run(ordered_project: Path) -> None:
    selection = order_failing_first(("test_a.py", "test_b.py"), ["test_b.py::test_odd"])
    run = quick_run(ordered_project, selection, stop=True)
    assert [t.nodeid for t in run.tests] == ["test_b.py::test_odd"]
    assert "stopped at the first failure: 4 test(s) not run" in run.notes


def test_the_rest_runs_when_the_failing_tests_pass(ordered_project: Path) -> None:
    (ordered_project / "calc.py").write_text("def half(n):\n    return n / 2\n")
    selection = order_failing_first(("test_a.py", "test_b.py"), ["test_b.py::test_odd"])
    run = quick_run(ordered_project, selection, stop=True)
    assert run.tests[0].nodeid == "test_b.py::test_odd" and run.all_passed
    assert len(run.tests) == 5 and not any("stopped" in note for note in run.notes)


def test_without_the_option_every_test_runs(ordered_project: Path) -> None:
    run = quick_run(ordered_project, ("test_b.py", "test_a.py"), stop=False)
    assert len(run.tests) == 5 and len(run.failures) == 1


def test_tests_that_may_fail_do_not_stop_the_run_and_another_failure_does(
    ordered_project: Path,
) -> None:
    (ordered_project / "calc.py").write_text("def half(n):\n    return n // 2 if n else 1\n")
    limits = SandboxLimits(per_test_timeout=5.0, run_timeout=60.0)
    odd = "test_b.py::test_odd"
    run = run_tests(
        ordered_project, ("test_b.py", "test_a.py"), limits=limits, autoload_plugins=False,
        stop_on_first_failure=True, may_fail=(odd,),
    )  # fmt: skip
    # test_odd fails as it did and the run goes on; test_a0 (half(0)) breaks and ends it.
    assert [(t.nodeid, t.outcome) for t in run.tests] == [
        (odd, "failed"),
        ("test_a.py::test_a0", "failed"),
    ]
    assert "stopped at the first failure: 3 test(s) not run" in run.notes


def test_tests_of_a_class_that_ran_before_a_failing_one_come_with_it() -> None:
    order = ["t.py::C::test_a", "t.py::C::test_b", "t.py::C::test_c", "t.py::test_f", "u.py::D::x"]
    assert with_class_predecessors(["t.py::C::test_b", "u.py::D::x"], order) == (
        "t.py::C::test_a",
        "t.py::C::test_b",
        "u.py::D::x",
    )


def test_functions_bring_no_predecessors_and_unknown_ids_come_last() -> None:
    order = ["t.py::test_a", "t.py::test_b"]
    assert with_class_predecessors(["t.py::test_b", "v.py::C::y"], order) == (
        "t.py::test_b",
        "v.py::C::y",
    )
