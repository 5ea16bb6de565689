"""Access: local login with bcrypt passwords, SSO header identity, and each role's limits."""

from __future__ import annotations

import bcrypt
import pytest
from sqlalchemy import Engine
from sqlmodel import select
from streamlit.testing.v1 import AppTest
from test_dashboard_helpers import APP, app_as, make_store, open_page
from typer.testing import CliRunner

from dashboard import data
from dashboard.nav import PAGE_SPECS, allowed_titles
from vigil.cli.app import app as cli
from vigil.store.db import session_scope
from vigil.store.tables import AuditLog, User
from vigil.users import (
    AuthError,
    Identity,
    PermissionDeniedError,
    Role,
    add_user,
    authenticate,
    identity_from_header,
)


@pytest.fixture(autouse=True)
def _fast_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer bcrypt rounds in tests (the hash format and checks are the same)."""
    import vigil.users

    monkeypatch.setattr(vigil.users, "BCRYPT_ROUNDS", 4)


ALL_TITLES = [t for specs in PAGE_SPECS.values() for _, t, *_ in specs]
ADMIN_ONLY = {"Users", "Settings", "Audit log"}


def _nav_titles(ident: Identity) -> set[str]:
    """Page titles the navigation offers this identity."""
    return set(allowed_titles(ident))


def test_users_add_cli_hashes_with_bcrypt_and_audits(settings, engine: Engine) -> None:
    res = CliRunner().invoke(
        cli, ["users", "add", "alice", "--role", "quality officer", "--password", "s3cret-pass"]
    )
    assert res.exit_code == 0, res.output
    with session_scope(engine) as s:
        u = s.get(User, "alice")
        assert u.role == "quality_officer"
        assert u.password_hash.startswith("$2") and "s3cret" not in u.password_hash
        assert bcrypt.checkpw(b"s3cret-pass", u.password_hash.encode())
        audit = s.exec(select(AuditLog).where(AuditLog.action == "user.add")).all()
        assert [a.target for a in audit] == ["alice"]
    bad = CliRunner().invoke(cli, ["users", "add", "bob", "--role", "boss", "--password", "x" * 9])
    assert bad.exit_code == 1 and "unknown role" in bad.output
    short = CliRunner().invoke(cli, ["users", "add", "bob", "--role", "admin", "--password", "x"])
    assert short.exit_code == 1 and "too short" in short.output


def test_authenticate_and_sso(engine: Engine) -> None:
    add_user(engine, "carol", Role.ADMINISTRATOR, "correct horse", actor="test")
    add_user(engine, "dave", "coe_member", None, actor="test")  # SSO only
    assert authenticate(engine, "carol", "correct horse").role is Role.ADMINISTRATOR
    for name, pw in (("carol", "wrong pass"), ("nobody", "correct horse"), ("dave", "")):
        with pytest.raises(AuthError):
            authenticate(engine, name, pw)
    assert identity_from_header(engine, "dave") == Identity("dave", Role.COE_MEMBER, "sso")
    with pytest.raises(AuthError):
        identity_from_header(engine, "mallory")


def test_login_form_signs_in(engine: Engine) -> None:
    add_user(engine, "erin", Role.QUALITY_OFFICER, "erin-password", actor="test")
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert at.text_input[0].label == "User name"
    at.text_input[0].input("erin")
    at.text_input[1].input("not-her-password")
    at.button[0].click().run()
    assert "vigil_identity" not in at.session_state
    assert any("wrong password" in e.value for e in at.error)
    at.text_input[1].input("erin-password")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["vigil_identity"].username == "erin"
    assert "Overview" in [t.value for t in at.title]


def test_each_role_sees_only_its_pages(engine: Engine) -> None:
    make_store(engine, 200, monitor=False)
    for role in [r.value for r in Role]:
        _role_pages(role)


def _role_pages(role: str) -> None:
    at = app_as(role)
    assert not at.exception
    expected = set(ALL_TITLES) if role == "admin" else set(ALL_TITLES) - ADMIN_ONLY
    assert _nav_titles(Identity("x", Role(role))) == expected
    for page in ("users", "settings", "audit"):
        if role == "admin":
            open_page(at, page)
        else:  # not registered for this role: the app cannot be navigated there
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(f"pages/{page}.py")
            # and the page itself refuses to render if run directly
            direct = AppTest.from_file(str(APP.parent / "pages" / f"{page}.py"))
            direct.session_state["vigil_identity"] = {"username": "x", "role": role}
            direct.run()
            assert any("may not" in e.value for e in direct.error)
            assert not direct.dataframe


def test_write_paths_refuse_the_wrong_role(engine: Engine) -> None:
    make_store(engine, 200, monitor=False)
    coe = Identity("c", Role.COE_MEMBER)
    admin_istr = Identity("a", Role.ADMINISTRATOR)
    qo = Identity("q", Role.QUALITY_OFFICER)
    alert_id = int(data.alerts()["id"].iloc[0])
    for who in (coe, admin_istr):
        with pytest.raises(PermissionDeniedError):
            data.acknowledge_alert(alert_id, who, "x")
        with pytest.raises(PermissionDeniedError):
            data.adjudicate(1, "ich", "ai_right", who, ai_call=True, rad_label="negative")
    for who in (coe, qo):
        with pytest.raises(PermissionDeniedError):
            data.update_checklist_item(
                None, "ai_inventory", who, status="done", owner="x", evidence="y"
            )
        with pytest.raises(PermissionDeniedError):
            data.save_setting(data.ROI_SETTING, {}, who, data.Permission.EDIT_ROI)
    with session_scope(engine) as s:
        assert s.exec(select(AuditLog)).all() == []  # nothing was written


def test_pages_hide_actions_from_roles_without_them(engine: Engine) -> None:
    make_store(engine, 300, monitor=False)
    coe = open_page(app_as("coe_member"), "alerts")
    assert not [b for b in coe.button if b.label == "Acknowledge"]
    qo = open_page(app_as("quality_officer"), "alerts")
    assert [b for b in qo.button if b.label == "Acknowledge"]
    # administrators edit the checklist, quality officers do not
    assert not [
        b
        for b in open_page(app_as("quality_officer"), "readiness").button
        if b.label == "Save item"
    ]
    assert [
        b for b in open_page(app_as("administrator"), "readiness").button if b.label == "Save item"
    ]


def test_dashboard_command_has_no_telemetry_and_help() -> None:
    import tomllib

    from vigil.cli.commands.dashboard import streamlit_command

    cmd = streamlit_command(8600, "127.0.0.1")
    pairs = dict(zip(cmd[5::2], cmd[6::2], strict=False))
    assert pairs["--browser.gatherUsageStats"] == "false"
    assert pairs["--server.headless"] == "true"
    assert (pairs["--server.port"], pairs["--server.address"]) == ("8600", "127.0.0.1")
    config = tomllib.loads((APP.parent / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    res = CliRunner().invoke(cli, ["dashboard", "--help"])
    assert res.exit_code == 0 and "--port" in res.output and "vigil users add" in res.output


def test_settings_page_admin_only_audited_and_never_shows_secrets(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vigil.settings import get_settings

    secret = "hospital-secret-" + "x" * 20
    monkeypatch.setenv("VIGIL_PSEUDONYM_SECRET", secret)
    get_settings.cache_clear()
    make_store(engine, 200, monitor=False)
    at = open_page(app_as("admin", "root"), "settings")
    shown = next(df.value for df in at.dataframe if "setting" in df.value.columns)
    rendered = " ".join(
        [str(v) for v in shown["value"]]
        + [m.value for m in at.markdown]
        + [c.value for c in at.caption]
    )
    assert secret not in rendered and "hospital-secret" not in str(at._tree)
    # the dead-letter key is still the public demo one: said, not shown
    row = shown[shown["setting"] == "pseudonym_secret / deadletter_key"].iloc[0]
    assert row["value"] == "PUBLIC DEMO SECRETS IN USE"
    assert any("demo" in w.value for w in at.warning)
    # edit an application setting: stored, audited, and used by the page it governs
    box = next(n for n in at.number_input if n.label.startswith("Discordant cases listed"))
    assert box.value == 500
    box.set_value(60)
    next(b for b in at.button if b.label == "Save settings").click().run()
    assert not at.exception
    assert any("Settings saved" in m.value for m in at.success)
    with session_scope(engine) as s:
        audit = s.exec(select(AuditLog).where(AuditLog.action == "setting.update")).all()
        assert [(a.actor, a.target) for a in audit] == [("root", "setting:dashboard")]
        assert audit[0].detail["new"]["discordance_rows_shown"] == 60
        assert audit[0].detail["old"] is None
    assert data.app_settings()["discordance_rows_shown"] == 60
    # out-of-range values and other roles are refused, and nothing more is written
    with pytest.raises(data.InvalidInputError):
        data.save_app_settings({"discordance_rows_shown": 10}, Identity("root", Role.ADMIN))
    with pytest.raises(data.InvalidInputError):
        data.save_app_settings({"no_such_setting": 1}, Identity("root", Role.ADMIN))
    for role in (Role.COE_MEMBER, Role.QUALITY_OFFICER, Role.ADMINISTRATOR):
        with pytest.raises(PermissionDeniedError):
            data.save_app_settings({"discordance_rows_shown": 100}, Identity("x", role))
    with session_scope(engine) as s:
        assert len(s.exec(select(AuditLog).where(AuditLog.action == "setting.update")).all()) == 1
    get_settings.cache_clear()
