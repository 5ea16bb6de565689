"""A real browser against `vigil dashboard`: sign in, visit every page, acknowledge an alert,
adjudicate a case, download the de-identified export; a screenshot of each page lands in
test-artifacts/. Every request the browser makes is recorded: nothing may leave 127.0.0.1.

Debian's chromium through Playwright (never `playwright install`). Without it these tests skip
locally but FAIL under CI (``CI=true``), like the PostgreSQL half of the store tests."""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlmodel import select

from dashboard.nav import PAGE_SPECS
from dashboard.synthetic import populate
from vigil.settings import get_settings
from vigil.store.db import dispose_all, open_store, session_scope
from vigil.store.tables import Alert, AuditLog, FinalRead, Study
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

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture(autouse=True)
def _chromium() -> None:
    """Skip without Debian's chromium, except under CI where a missing browser is a failure."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but Debian chromium is missing at {CHROMIUM} (apt install chromium)")
    pytest.skip("Debian chromium not installed")


def _record_requests(context) -> list[str]:
    """Every URL the browser context requests (pages, workers, assets), in order."""
    seen: list[str] = []
    context.on("request", lambda req: seen.append(req.url))
    return seen


def _external(urls: list[str]) -> list[str]:
    """Requests that would leave the machine (data:/blob: URLs stay in the browser)."""
    out = []
    for u in urls:
        parts = urlsplit(u)
        if parts.scheme in {"data", "blob", "about"}:
            continue
        if parts.hostname not in LOCAL_HOSTS:
            out.append(u)
    return out


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
            context = browser.new_context(
                viewport={"width": 1500, "height": 1000}, accept_downloads=True
            )
            requests = _record_requests(context)
            page = context.new_page()
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
            # the de-identified export, through the real download button
            _settle(page)
            with page.expect_download(timeout=60_000) as dl:
                page.get_by_role(
                    "button", name="Export discordant cases, de-identified (CSV)"
                ).click()
            export_text = Path(dl.value.path()).read_text()
            export_name = dl.value.suggested_filename
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
        accessions = {a for a in s.exec(select(Study.accession)).all() if a}
        adj_study = adj[0].study_id
    # nothing left the machine: every request went to the dashboard on 127.0.0.1
    assert requests and any(url in r for r in requests)
    assert _external(requests) == [], _external(requests)[:10]
    # the downloaded CSV: discordant cases without accession, study id or exact dates
    assert export_name.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(export_text)))
    assert rows, "the export is empty"
    assert {"accession", "study_id", "exam_at", "age", "patient_id"}.isdisjoint(rows[0])
    assert {"case_key", "exam_month", "ai_call", "label"} <= set(rows[0])
    assert not re.search(r"\d{4}-\d{2}-\d{2}", export_text), "an exact date in the export"
    cells = {v for r in rows for v in r.values()}
    assert not cells & accessions, "an accession number in the export"
    assert all(re.fullmatch(r"\d{4}-\d{2}", r["exam_month"]) for r in rows)
    assert str(adj_study) not in {r["case_key"] for r in rows}
    assert "adjudication" in {r["label_source"] for r in rows}  # the case just adjudicated
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
            context = browser.new_context()
            requests = _record_requests(context)
            page = context.new_page()
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
        assert requests and _external(requests) == [], _external(requests)[:10]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        dispose_all()
        get_settings.cache_clear()
