"""Settings and their documentation stay in step: the generated table of docs/configuration.md,
``.env.example`` and the ``.env`` file ``Settings`` reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings
from tools import settings_table

ROOT = Path(__file__).resolve().parents[1]


def test_the_documented_table_is_the_generated_one() -> None:
    current = settings_table.DOC.read_text()
    assert settings_table.rewrite(current) == current, "run `python -m tools.settings_table`"
    assert settings_table.main(["--check"]) == 0
    documented = re.findall(r"^\| `PAINPATH_([A-Z0-9_]+)` \|", current, flags=re.M)
    assert documented == [name.upper() for name in Settings.model_fields]


def test_a_stale_table_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = settings_table.DOC.read_text().replace("| `PAINPATH_WORKERS` |", "| `PAINPATH_W` |")
    doc = tmp_path / "configuration.md"
    doc.write_text(stale)
    monkeypatch.setattr(settings_table, "DOC", doc)
    assert settings_table.main(["--check"]) == 1
    assert settings_table.main([]) == 0
    assert settings_table.main(["--check"]) == 0
    assert "| `PAINPATH_WORKERS` | integer | `1` |" in doc.read_text()


def test_the_markers_must_be_there() -> None:
    with pytest.raises(ValueError, match="markers are missing"):
        settings_table.rewrite("# Configuration\n")


def test_env_example_names_every_setting_and_no_other() -> None:
    example = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"\bPAINPATH_([A-Z0-9_]+)=", example))
    assert named == {name.upper() for name in Settings.model_fields}


def test_settings_read_a_dotenv_file_below_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"PAINPATH_{name.upper()}", raising=False)
    (tmp_path / ".env").write_text(
        "PAINPATH_PORT=9123\nPAINPATH_WORKERS=3\nPAINPATH_CORS_ORIGINS=[]\n"
        'PAINPATH_SMART_SCOPE="system/*.rs system/Observation.cu"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAINPATH_WORKERS", "2")  # the environment wins over .env
    settings = Settings()
    assert (settings.port, settings.workers, settings.cors_origins) == (9123, 2, [])
    assert settings.smart_scope == "system/*.rs system/Observation.cu"
    (tmp_path / ".env").write_text("PAINPATH_PORT=70000\n")
    with pytest.raises(ValidationError, match="port"):
        Settings()
