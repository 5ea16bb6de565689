"""Shared helpers for the dashboard tests: a populated store and AppTest signed in as a role.

(Named test_dashboard_* so it belongs to the dashboard area; its own tests check the helper.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from dashboard import data as dashboard_data
from dashboard.synthetic import populate
from vigil.store.db import session_scope
from vigil.store.tables import AIResult, MonitorRun, Study

dashboard_data.WARM_UP_IN_BACKGROUND = False  # each test has its own store: no stray warming
# case-level sections render on the first run (the background load has its own test)
dashboard_data.LOAD_FRAME_IN_BACKGROUND = False
APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
N_STUDIES = 2_000


def run_monitors_into(engine: Engine) -> dict[str, Any] | None:
    """Store a monitor run with the real runner (None when the runner is not in this build)."""
    try:
        from vigil.monitoring import run_monitors
    except ImportError:
        return None
    return run_monitors(engine, store=True)


def make_store(engine: Engine, n: int = N_STUDIES, *, monitor: bool = True) -> dict | None:
    populate(engine, n)
    return run_monitors_into(engine) if monitor else None


def app_as(role: str, username: str | None = None) -> AppTest:
    """An AppTest of the dashboard, signed in with ``role`` (as the login form would)."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.session_state["vigil_identity"] = {"username": username or f"t-{role}", "role": role}
    return at.run()


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def plotly_specs(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def need_results(results: dict | None) -> dict:
    if results is None:
        pytest.skip("vigil.monitoring (the monitor runner) is not in this build yet")
    return results


def test_synthetic_store_is_what_it_says(engine: Engine) -> None:
    populate(engine, 300)
    with session_scope(engine) as s:
        assert s.exec(select(func.count(Study.id))).one() == 300
        assert s.exec(select(func.count(AIResult.id))).one() == 300
        assert s.exec(select(func.count(MonitorRun.id))).one() == 0
