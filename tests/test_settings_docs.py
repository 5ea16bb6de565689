"""Every setting is documented in the README, and the CLI help is complete (Datasette-style)."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from vigil.cli.app import app
from vigil.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _settings_table_keys() -> set[str]:
    section = README.split("## Settings", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))


def test_every_setting_is_in_the_readme_table() -> None:
    fields = set(Settings.model_fields)
    documented = _settings_table_keys()
    assert fields - documented == set(), "settings missing from README"
    assert documented - fields == set(), "README documents settings that do not exist"


def test_every_setting_has_a_description() -> None:
    missing = [k for k, f in Settings.model_fields.items() if not f.description]
    assert missing == []


def test_every_command_has_help() -> None:
    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    from typer.main import get_command

    root = get_command(app)
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        assert cmd.help or cmd.short_help, f"`vigil {name}` has no help text"
        assert name in top.output


def test_unknown_command_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["no-such-command"])
    assert result.exit_code != 0
    assert "no-such-command" in result.output


def test_domain_error_is_one_line_without_traceback(monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_DATABASE_URL", "nonsense")
    from vigil.settings import get_settings

    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["db", "current"])
    get_settings.cache_clear()
    assert result.exit_code == 1
    assert "database_url" in result.output
    assert "Traceback" not in result.output


def test_out_of_range_port_is_refused_before_anything_starts() -> None:
    for cmd in (["dashboard", "--port", "99999"], ["demo", "--port", "0", "--no-serve"]):
        result = CliRunner().invoke(app, cmd)
        assert result.exit_code == 2, result.output
        assert "--port" in result.output and "Traceback" not in result.output
