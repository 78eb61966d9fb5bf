"""One configuration: flags > editor/TUI > [tool.cyclefix] > user config file > defaults."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cyclefix.cli import main
from cyclefix.config import (
    ALL_LAYERS,
    format_settings,
    load_settings,
    parse_overrides,
    require_trusted,
    trust_project,
    user_config_file,
)
from cyclefix.errors import CyclefixError
from cyclefix.trust import TrustStore


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def write_user_config(home: Path, text: str) -> Path:
    path = home / "cyclefix" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def project(tmp_path: Path, section: str) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text(f"[tool.cyclefix]\n{section}")
    return root


def test_user_config_file_follows_xdg_config_home(config_home: Path) -> None:
    assert user_config_file() == config_home / "cyclefix" / "config.toml"


def test_each_layer_overrides_the_one_below_key_by_key(tmp_path: Path, config_home: Path) -> None:
    write_user_config(config_home, 'rounds = 2\nbudget = 60\nthreads = 3\ngitOnApply = "stage"\n')
    root = project(tmp_path, 'rounds = 3\nbudget = 90\nmodel = "qwen2.5-coder-0.5b"\n')
    resolved = load_settings(root, editor={"budget": 120.0}, flags={"threads": 1})
    s = resolved.settings
    assert (s.rounds, s.budget, s.threads, s.git_on_apply) == (3, 120.0, 1, "stage")
    assert s.model == "qwen2.5-coder-0.5b"  # a registry model needs no trust
    assert resolved.sources["rounds"].startswith("project (")
    assert resolved.sources["budget"] == "editor/TUI settings"
    assert resolved.sources["threads"] == "command line"
    assert resolved.sources["git_on_apply"].startswith("user config (")
    assert resolved.sources["debounce"] == "default"


def test_flags_not_given_are_none_and_leave_lower_layers(tmp_path: Path, config_home: Path) -> None:
    root = project(tmp_path, "rounds = 3\n")
    resolved = load_settings(root, flags={"rounds": None, "model": None})
    assert resolved.settings.rounds == 3


def test_an_untrusted_project_model_is_left_out_and_named(
    tmp_path: Path, config_home: Path
) -> None:
    root = project(tmp_path, 'model = "/models/evil.gguf"\nrounds = 2\n')
    resolved = load_settings(root)
    assert resolved.settings.model == "qwen2.5-coder-1.5b"
    assert resolved.settings.rounds == 2
    assert [(r.setting, r.value) for r in resolved.untrusted] == [("model", "/models/evil.gguf")]
    with pytest.raises(CyclefixError) as error:
        require_trusted(resolved, {"model": "--model"})
    message = str(error.value)
    assert "model = '/models/evil.gguf'" in message
    assert "--trust-project" in message and "--model" in message


def test_a_flag_replacing_the_untrusted_value_needs_no_trust(
    tmp_path: Path, config_home: Path
) -> None:
    root = project(tmp_path, 'python = "/tmp/evil/python"\n')
    resolved = load_settings(root, flags={"python": "/usr/bin/python3"})
    assert resolved.untrusted == ()
    require_trusted(resolved, {"python": "--python"})
    assert resolved.settings.python == "/usr/bin/python3"


def test_trust_project_remembers_the_values_in_the_user_config_folder(
    tmp_path: Path, config_home: Path
) -> None:
    root = project(tmp_path, 'python = "/opt/py/bin/python"\n')
    assert [r.setting for r in trust_project(root)] == ["python"]
    assert (config_home / "cyclefix" / "trusted.json").is_file()
    resolved = load_settings(root)
    assert resolved.untrusted == () and resolved.settings.python == "/opt/py/bin/python"
    assert TrustStore().is_trusted(root, "python", "/opt/py/bin/python")


def test_bad_values_in_files_warn_and_fall_through(tmp_path: Path, config_home: Path) -> None:
    write_user_config(config_home, 'rounds = "many"\ncolour = "red"\n')
    root = project(tmp_path, "gpuLayers = -7\n")
    resolved = load_settings(root)
    assert resolved.settings.rounds == 4 and resolved.settings.gpu_layers is None
    assert len(resolved.warnings) == 3
    assert any("unknown setting 'colour'" in w for w in resolved.warnings)
    assert any("gpuLayers must be a whole number of layers" in w for w in resolved.warnings)


def test_new_settings_accept_their_documented_values() -> None:
    values, warnings = parse_overrides(
        {"gpu-layers": "all", "threads": 8, "git_on_apply": "Commit"}, "toml"
    )
    assert warnings == []
    assert values == {"gpu_layers": ALL_LAYERS, "threads": 8, "git_on_apply": "commit"}
    _, warnings = parse_overrides({"gitOnApply": "push", "threads": 0}, "toml")
    assert len(warnings) == 2


def test_format_settings_names_every_value_and_its_source(
    tmp_path: Path, config_home: Path
) -> None:
    root = project(tmp_path, "rounds = 3\ngpuLayers = 0\n")
    lines = format_settings(load_settings(root)).splitlines()
    rounds = next(line for line in lines if line.startswith("rounds"))
    assert rounds.split()[1] == "3" and f"{root / 'pyproject.toml'}" in rounds
    gpu = next(line for line in lines if line.startswith("gpuLayers"))
    assert gpu.split()[1] == "0"
    model = next(line for line in lines if line.startswith("model"))
    assert '"qwen2.5-coder-1.5b"' in model and model.endswith("default")


def test_cyclefix_config_prints_the_effective_settings(
    tmp_path: Path, config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = write_user_config(config_home, "threads = 2\n")
    root = project(tmp_path, 'rounds = 3\nmodel = "http-model.gguf"\n')
    assert main(["config", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"Settings for {root}"
    assert "threads         2" in out and f"user config ({user})" in out
    assert "not trusted: model = 'http-model.gguf'" in out


def test_fix_refuses_an_untrusted_project_python_naming_the_flag(
    tmp_path: Path, config_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, 'python = "/tmp/not-mine/python"\n')
    (root / "test_a.py").write_text("def test_a():\n    assert True\n")
    assert main(["fix", str(root)]) == 2
    err = capsys.readouterr().err
    assert "python = '/tmp/not-mine/python'" in err
    assert "--trust-project" in err and "--python" in err


def test_fix_takes_rounds_model_and_tests_from_pyproject_once_trusted(
    tmp_path: Path, config_home: Path
) -> None:
    examples = Path(__file__).resolve().parent.parent / "examples"
    root = tmp_path / "leap"
    shutil.copytree(examples / "leap_year", root)
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps(["```python\ndef is_leap_year(year):\n    return False\n```\n"]))
    with (root / "pyproject.toml").open("a") as toml:
        toml.write(
            f'\n[tool.cyclefix]\nrounds = 1\nmodel = "scripted:{replies}"\n'
            'tests = ["tests/test_calendar_utils.py::test_common_year"]\n'
        )

    def fix(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cyclefix.cli", "fix", str(root), "--no-extend", *flags],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,  # the project's tests are found from its root, not the cwd
            env={**os.environ, "XDG_CONFIG_HOME": str(config_home)},
        )

    refused = fix()
    assert refused.returncode == 2 and "--trust-project" in refused.stderr
    proc = fix("--trust-project", "--json")
    data = json.loads(proc.stdout)
    assert data["status"] == "not_fixed", proc.stderr
    assert len(data["rounds"]) == 1
    assert data["tests"]["initial"]["total"] == 1
    assert data["tests"]["initial"]["failing"][0]["test"].endswith("::test_common_year")


def test_pass_env_comes_from_the_user_never_from_the_project(
    tmp_path: Path, config_home: Path
) -> None:
    write_user_config(config_home, 'passEnv = ["DATABASE_URL"]\n')
    root = project(tmp_path, 'passEnv = ["AWS_SECRET_ACCESS_KEY"]\n')
    resolved = load_settings(root)
    assert resolved.settings.pass_env == ("DATABASE_URL",)
    assert resolved.settings.refine_config().pass_env == ("DATABASE_URL",)
    assert any("passEnv is taken only from your own settings" in w for w in resolved.warnings)
    flagged = load_settings(root, flags={"pass_env": ("LANGUAGE",)})
    assert flagged.settings.pass_env == ("LANGUAGE",)


def test_pass_env_takes_only_environment_names() -> None:
    values, warnings = parse_overrides({"passEnv": ["OK_NAME", "no good"]}, "test")
    assert values == {}
    assert "passEnv must be a list of environment variable names" in warnings[0]


def test_a_passed_name_reaches_the_tests_and_others_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cyclefix.refine import RefineConfig, check

    root = tmp_path / "envproj"
    root.mkdir()
    (root / "conftest.py").write_text("")
    (root / "test_env.py").write_text(
        "import os\n\n"
        "def test_passed():\n    assert os.environ.get('WANTED_BY_TESTS') == 'yes'\n\n"
        "def test_not_passed():\n    assert 'UNLISTED_SECRET' not in os.environ\n"
    )
    monkeypatch.setenv("WANTED_BY_TESTS", "yes")
    monkeypatch.setenv("UNLISTED_SECRET", "hunter2")
    without = check(root, config=RefineConfig())
    assert [t.outcome for t in sorted(without.tests, key=lambda t: t.nodeid)] == [
        "passed",
        "failed",
    ]
    passed = check(root, config=RefineConfig(pass_env=("WANTED_BY_TESTS",)))
    assert passed.all_passed, [t.nodeid for t in passed.failures]
