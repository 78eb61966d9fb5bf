"""Workspace trust in `cyclefix serve`: a project's own model waits for the user's Trust.

The project's pyproject.toml names a scripted model (a stand-in for `openai:URL#M`); no model
is installed, so the default the server falls back to is missing and offers no fix.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from server_support import (
    LOG_DIR,
    SERVER_COMMAND,
    Editor,
    copy_project,
    lsp_fixture,
    scripted,
    server_env,
    wait_for,
)

from cyclefix.server.diagnostics import CODE_FIX, CODE_TEST_FAILED

LOG_DIR.mkdir(parents=True, exist_ok=True)
CONFIG_HOME = LOG_DIR / "trust-config"
TRUST_FILE = CONFIG_HOME / "cyclefix" / "trusted.json"
pytestmark = pytest.mark.timeout(180)


@lsp_fixture(
    ClientServerConfig(
        server_command=SERVER_COMMAND,
        server_env=server_env(
            XDG_CONFIG_HOME=str(CONFIG_HOME), CYCLEFIX_MODELS_DIR=str(LOG_DIR / "no-models")
        ),
    )
)
async def client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    yield
    await lsp_client.shutdown_session()


def project_choosing_its_model(tmp_path: Path) -> tuple[Path, str]:
    project = copy_project(tmp_path)
    model = scripted("median_fix.json")
    with (project / "pyproject.toml").open("a") as toml:
        toml.write(f'\n[tool.cyclefix]\nmodel = "{model}"\n')
    return project, model


def answer_trust_requests(client: LanguageClient, title: str) -> list[str]:
    """Answer every window/showMessageRequest with `title`; the questions asked."""
    asked: list[str] = []

    def on_request(params: types.ShowMessageRequestParams) -> types.MessageActionItem:
        asked.append(params.message)
        return types.MessageActionItem(title=title)

    client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)(on_request)
    return asked


def trusted_entries() -> list[dict[str, str]]:
    try:
        entries: list[dict[str, str]] = json.loads(TRUST_FILE.read_text())["trusted"]
    except FileNotFoundError:
        return []
    return entries


async def test_an_untrusted_project_model_is_not_used_and_the_default_is(
    client: LanguageClient, tmp_path: Path
) -> None:
    project, model = project_choosing_its_model(tmp_path)
    asked = answer_trust_requests(client, "Don't trust")
    editor = Editor(client)
    await editor.initialize(project, {"debounce": 0})
    doc = editor.open(project / "stats.py")
    editor.save(doc)
    await wait_for(lambda: asked, "a trust question")
    assert model in asked[0] and "Trust it for this project?" in asked[0]
    warning = await wait_for(
        lambda: [m for m in client.messages if "not used until you trust it" in m.message],
        "a warning that the project's model is not used",
    )
    assert model in warning[0].message
    await wait_for(
        lambda: editor.diagnostics(project / "tests" / "test_stats.py", CODE_TEST_FAILED),
        "test failure diagnostics",
    )
    # The default model (not installed here) was tried instead of the project's.
    await wait_for(
        lambda: [m for m in client.messages if "not installed" in m.message], "the default model"
    )
    assert not editor.diagnostics(project / "stats.py", CODE_FIX)
    assert {"root": str(project), "setting": "model", "value": model} not in trusted_entries()
    editor.save(doc)  # asked once per session, not on every save
    await wait_for(
        lambda: len([m for m in client.log_messages if "tests pass" in m.message]) >= 2,
        "a second run",
    )
    assert len(asked) == 1


async def test_a_trusted_project_model_is_remembered_and_used(
    client: LanguageClient, tmp_path: Path
) -> None:
    project, model = project_choosing_its_model(tmp_path)
    asked = answer_trust_requests(client, "Trust")
    editor = Editor(client)
    await editor.initialize(project, {"debounce": 0})
    doc = editor.open(project / "stats.py")
    editor.save(doc)
    entry = {"root": str(project), "setting": "model", "value": model}
    await wait_for(lambda: entry in trusted_entries(), "the trust to be stored")
    assert len(asked) == 1
    editor.save(doc)
    await wait_for(
        lambda: editor.diagnostics(project / "stats.py", CODE_FIX), "a verified fix", timeout=120
    )


async def test_the_users_own_model_setting_asks_nothing(
    client: LanguageClient, tmp_path: Path
) -> None:
    project, _ = project_choosing_its_model(tmp_path)
    asked = answer_trust_requests(client, "Don't trust")
    editor = Editor(client)
    await editor.initialize(project, {"debounce": 0, "model": scripted("median_fix.json")})
    doc = editor.open(project / "stats.py")
    editor.save(doc)
    await wait_for(
        lambda: editor.diagnostics(project / "stats.py", CODE_FIX), "a verified fix", timeout=120
    )
    assert asked == []
