"""`cyclefix fix` on a project whose module fails at import: a bug to fix, not the end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

MONEY = "def percent_of(cents, percent=DEFAULT_PERCENT):\n    return cents * percent // 100\n"
FIXED = "```python\ndef percent_of(cents, percent=20):\n    return cents * percent // 100\n```\n"
TEST = (
    "from shop.money import percent_of\n\n\ndef test_default_rate():\n"
    "    assert percent_of(1000) == 200\n"
)


def fix_json(root: Path, replies: list[str]) -> dict[str, object]:
    spec = root.parent / "replies.json"
    spec.write_text(json.dumps(replies))
    options = ["--json", "--rounds", "2", "--no-extend"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cyclefix.cli",
            "fix",
            str(root),
            "--model",
            f"scripted:{spec}",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    data: dict[str, object] = json.loads(proc.stdout)
    return data


def make_project(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"pyproject.toml": "", "shop/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_bad_default_argument_is_refined_like_a_failing_test(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", {"shop/money.py": MONEY, "tests/test_money.py": TEST})
    result = fix_json(root, [FIXED])
    assert result["status"] == "fixed", result
    assert "percent=20" in str(result["diff"])


def test_an_error_in_the_test_file_itself_stays_an_error(tmp_path: Path) -> None:
    broken = "from shop.money import percent_of\n\nRATE = RATES\n"
    money = "def percent_of(cents, percent=20):\n    return cents * percent // 100\n"
    root = make_project(tmp_path / "proj", {"shop/money.py": money, "tests/test_money.py": broken})
    result = fix_json(root, [FIXED])
    assert result["status"] == "error"
    assert "tests cannot be collected" in str(result["error"])


def test_a_syntax_error_in_the_module_under_test_is_refined(tmp_path: Path) -> None:
    broken = "def percent_of(cents, percent=20)\n    return cents * percent // 100\n"
    root = make_project(tmp_path / "proj", {"shop/money.py": broken, "tests/test_money.py": TEST})
    result = fix_json(root, [FIXED])
    assert result["status"] == "fixed", result
