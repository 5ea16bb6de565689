"""`vigil report` option checking: a bad --period or --paper stops with one clear line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from reports.window import parse_period
from vigil.cli.app import app
from vigil.errors import InvalidInputError


@pytest.mark.parametrize(
    "bad", ["2026-13", "2026-00", "2026-1", "Oct 2026", "2026/10", "", "26-10"]
)
def test_bad_period_is_one_clear_line(bad, tmp_path):
    res = CliRunner().invoke(app, ["report", "--period", bad, "--out", str(tmp_path / "p")])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert "YYYY-MM" in lines[0] or "01 to 12" in lines[0]
    assert "Traceback" not in res.output
    assert not (tmp_path / "p").exists()


def test_bad_paper_is_refused(tmp_path):
    res = CliRunner().invoke(
        app, ["report", "--period", "2026-10", "--out", str(tmp_path), "--paper", "a3"]
    )
    assert res.exit_code == 1
    assert "--paper must be a4 or letter" in res.output


def test_out_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "taken"
    f.write_text("x")
    res = CliRunner().invoke(app, ["report", "--period", "2026-10", "--out", str(f)])
    assert res.exit_code == 1
    assert "is a file" in res.output and "Traceback" not in res.output


def test_unknown_model_is_named(tmp_path, settings):
    res = CliRunner().invoke(
        app, ["report", "--period", "2026-10", "--out", str(tmp_path), "--model", "nope"]
    )
    assert res.exit_code == 1
    assert "no model named 'nope'" in res.output


@settings(max_examples=60, deadline=None)
@given(st.integers(1970, 2999), st.integers(1, 12))
def test_period_window_is_that_calendar_month(year, month):
    w = parse_period(f"{year:04d}-{month:02d}")
    assert w.start == datetime(year, month, 1, tzinfo=UTC)
    nxt = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    assert w.end == nxt
    assert w.label == w.start.strftime("%B %Y")


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=12))
def test_period_parser_accepts_only_yyyy_mm(text):
    import re

    ok = re.fullmatch(r"\s*([0-9]{4})-(0[1-9]|1[0-2])\s*", text) and int(text.strip()[:4]) >= 1970
    if ok:
        assert parse_period(text).period == text.strip()
    else:
        with pytest.raises(InvalidInputError):
            parse_period(text)
