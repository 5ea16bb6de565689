"""`vigil simulate --mllp`: the simulated network streamed to a real `vigil listen` process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from connectors_transport_support import Listener
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from vigil.cli.app import app
from vigil.settings import get_settings
from vigil.store.tables import DeadLetter, ReceivedMessage


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'vigil.sqlite'}"
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIGIL_DATABASE_URL", url)
    monkeypatch.setenv("VIGIL_DEMO", "1")
    get_settings.cache_clear()
    return url


def test_simulated_feeds_stream_to_the_listener_and_every_message_is_acked(
    sqlite_env: str, tmp_path: Path
) -> None:
    with Listener() as listener:
        result = CliRunner().invoke(
            app,
            ["simulate", "--studies", "60", "--months", "1", "--seed", "5", "--mess", "0.3",
             "--out", str(tmp_path / "sim"), "--mllp", f"127.0.0.1:{listener.port}"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        rc, _err = listener.terminate()
    assert rc == 0
    manifest = json.loads((tmp_path / "sim" / "manifest.json").read_text())
    sent = manifest["messages"]["total"]
    streamed = re.search(r"streamed ([\d,]+) messages", result.output)
    assert streamed and int(streamed.group(1).replace(",", "")) == sent
    engine = create_engine(sqlite_env)
    with engine.connect() as conn:
        ledger = conn.execute(select(func.count()).select_from(ReceivedMessage)).scalar_one()
        dead = conn.execute(select(func.count()).select_from(DeadLetter)).scalar_one()
    engine.dispose()
    # every message acknowledged is either in the ledger or a dead letter (garbage has no id)
    assert ledger + dead >= sent - len(manifest["malformed"])
    assert dead >= 1 if manifest["malformed"] else dead == 0


def test_bad_mllp_address_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--studies", "10", "--out", str(tmp_path / "s"), "--mllp", "nowhere"]
    )
    assert result.exit_code == 1
    assert "HOST:PORT" in result.output and "Traceback" not in result.output
