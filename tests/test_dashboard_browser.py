"""A real browser against `vigil dashboard`: sign in, visit every page, acknowledge an alert,
adjudicate a case; a screenshot of each page lands in test-artifacts/.

Debian's chromium through Playwright (never `playwright install`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlmodel import select

from dashboard.nav import PAGE_SPECS
from dashboard.synthetic import populate
from vigil.settings import get_settings
from vigil.store.db import dispose_all, open_store, session_scope
from vigil.store.tables import Alert, AuditLog, FinalRead
from vigil.users import Role, add_user

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"vigil dashboard exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("dashboard did not become healthy")


def test_browser_visits_every_page_and_acts(tmp_path: Path, monkeypatch) -> None:
    from playwright.sync_api import expect, sync_playwright

    db = f"sqlite:///{tmp_path / 'vigil.sqlite'}"
    monkeypatch.setenv("VIGIL_DATABASE_URL", db)
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIGIL_DEMO", "1")
    get_settings.cache_clear()
    engine = open_store()
    _real_pipeline(tmp_path / "sim")
    add_user(engine, "root", Role.ADMIN, "root-password", actor="test")
    ARTIFACTS.mkdir(exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    vigil = Path(sys.executable).with_name("vigil")
    log = open(tmp_path / "dashboard.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [str(vigil), "dashboard", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
        start_new_session=True,
    )
    try:
        _wait_healthy(url, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(url)
            page.get_by_label("User name").fill("root")
            page.get_by_label("Password", exact=True).fill("root-password")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Overview", exact=True, level=1)).to_be_visible(
                timeout=60_000
            )
            for specs in PAGE_SPECS.values():
                for _file, title, slug, _icon, _perm in specs:
                    page.get_by_role("link", name=title).first.click()
                    expect(
                        page.get_by_role("heading", name=title, exact=True, level=1)
                    ).to_be_visible(timeout=60_000)
                    _settle(page)
                    assert page.get_by_test_id("stException").count() == 0, title
                    if title in {
                        "Overview",
                        "Model performance",
                        "Drift",
                        "Fairness",
                        "ROI and business case",
                        "Ingest health",
                    }:
                        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
                    page.screenshot(path=str(ARTIFACTS / f"dashboard-{slug}.png"), full_page=True)
            # acknowledge the first alert in the inbox
            page.get_by_role("link", name="Alerts").first.click()
            expect(page.get_by_role("heading", name="Alerts", exact=True, level=1)).to_be_visible(
                timeout=60_000
            )
            _settle(page)
            page.get_by_role("button", name="Acknowledge", exact=True).click()
            expect(page.get_by_text("acknowledged.", exact=False)).to_be_visible(timeout=60_000)
            # adjudicate the first discordant case
            page.get_by_role("link", name="Discordance review").first.click()
            expect(page.get_by_role("heading", name="Discordance review")).to_be_visible(
                timeout=60_000
            )
            page.get_by_role("button", name="Record adjudication", exact=True).click()
            expect(page.get_by_text("recorded as the reference")).to_be_visible(timeout=60_000)
            page.screenshot(
                path=str(ARTIFACTS / "dashboard-after-adjudication.png"), full_page=True
            )
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    with session_scope(engine) as s:
        acked = s.exec(select(Alert).where(Alert.status == "acknowledged")).all()
        assert [a.acknowledged_by for a in acked] == ["root"]
        adj = s.exec(select(FinalRead).where(FinalRead.label_source == "adjudication")).all()
        assert len(adj) == 1 and adj[0].is_current
        actions = {a.action for a in s.exec(select(AuditLog).where(AuditLog.actor == "root"))}
        assert {"alert.acknowledge", "case.adjudicate"} <= actions
    dispose_all()
    get_settings.cache_clear()
    shots = {f.name for f in ARTIFACTS.glob("dashboard-*.png")}
    assert {
        f"dashboard-{slug}.png" for specs in PAGE_SPECS.values() for _f, _t, slug, _i, _p in specs
    } <= shots


def _real_pipeline(out: Path) -> None:
    """The store the way a user fills it: vigil simulate, models add, ingest, monitor."""
    from typer.testing import CliRunner

    from vigil.cli.app import app as cli

    runner = CliRunner()

    def run(*args: str) -> None:
        res = runner.invoke(cli, list(args))
        assert res.exit_code == 0, (args, res.output[-2000:])

    run("simulate", "--studies", "1500", "--months", "6", "--seed", "3", "--out", str(out))
    run("models", "add", *sorted(str(p) for p in (out / "models").glob("*.toml")))
    run("ingest", str(out / "feeds"), "--workers", "0")
    run("monitor")


def _settle(page) -> None:
    """Wait until Streamlit has finished running the script for this page."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(
        timeout=60_000
    )


def test_browser_sso_header_signs_in(tmp_path: Path, monkeypatch) -> None:
    """Behind the SSO proxy: the trusted header names the user, the role comes from the store;
    a user the store does not know gets no page."""
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv("VIGIL_DATABASE_URL", f"sqlite:///{tmp_path / 'vigil.sqlite'}")
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIGIL_DEMO", "1")
    monkeypatch.setenv("VIGIL_AUTH_HEADER", "X-Forwarded-User")
    get_settings.cache_clear()
    engine = open_store()
    populate(engine, 100)
    add_user(engine, "dave", Role.COE_MEMBER, None, actor="test")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    vigil = Path(sys.executable).with_name("vigil")
    log = open(tmp_path / "dashboard.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [str(vigil), "dashboard", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    try:
        _wait_healthy(url, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
            page = browser.new_page()
            page.set_extra_http_headers({"X-Forwarded-User": "dave"})
            page.goto(url)
            expect(page.get_by_role("heading", name="Overview", exact=True, level=1)).to_be_visible(
                timeout=60_000
            )
            expect(page.get_by_text("Signed in as")).to_contain_text("dave")
            assert page.get_by_role("link", name="Audit log").count() == 0  # not an admin
            stranger = browser.new_page()
            stranger.set_extra_http_headers({"X-Forwarded-User": "mallory"})
            stranger.goto(url)
            expect(stranger.get_by_text("has no Vigil role")).to_be_visible(timeout=60_000)
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        dispose_all()
        get_settings.cache_clear()
