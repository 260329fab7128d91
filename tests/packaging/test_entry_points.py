"""In-process checks of what the installed-wheel test exercises in subprocesses: ``--version``,
``--help`` on every command and option, and the refusal to serve without the conformance
package."""

from __future__ import annotations

import argparse
import runpy
import tomllib
from pathlib import Path

import pytest

from service import __version__
from service.cli import main as cli
from service.conformance.store import ConformanceStore, default_profiles_dir
from service.domain.errors import KnowledgeError
from service.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_the_project_version(capsys: pytest.CaptureFixture[str]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert __version__ == project["version"]
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"painpath {__version__}\n"


def test_python_dash_m_service_is_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        runpy.run_module("service", run_name="__main__", alter_sys=True)
    assert stopped.value.code == 2  # argparse: a command is required
    assert "usage: painpath" in capsys.readouterr().err


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_and_option_has_help() -> None:
    parser = cli._parser()
    commands = _subcommands(parser)
    assert set(commands) == {"triage", "explain", "subscribe", "bulk", "serve"}
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert all(choice.help for choice in sub._choices_actions)
    undocumented = [
        f"{name} {action.dest}"
        for name, command in commands.items()
        for action in command._actions
        if not action.help and not isinstance(action, argparse._HelpAction)
    ]
    assert undocumented == []
    assert all(command.description for command in commands.values())


def test_serve_refuses_a_missing_profiles_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "gone"
    monkeypatch.setenv("PAINPATH_PROFILES_DIR", str(missing))
    get_settings.cache_clear()
    try:
        assert cli.main(["serve", "--port", "1"]) == 1
    finally:
        get_settings.cache_clear()
    assert capsys.readouterr().err == (
        f"painpath: conformance package directory {missing} does not exist (set "
        "PAINPATH_PROFILES_DIR to the fhir_profiles directory, or unset it to use the packaged "
        "one)\n"
    )


def test_a_directory_without_package_json_is_not_the_conformance_package(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"resourceType": "ValueSet", "id": "x"}')
    with pytest.raises(KnowledgeError, match=r"has no package\.json"):
        ConformanceStore.load(tmp_path)


def test_the_source_tree_serves_its_own_fhir_profiles() -> None:
    assert default_profiles_dir() == ROOT / "fhir_profiles"
    store = ConformanceStore.load(default_profiles_dir())
    assert store.read("OperationDefinition", "triage") is not None
