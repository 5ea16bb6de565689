"""Readiness checklist, model inventory, ingest health, users and audit pages."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, func
from sqlmodel import select
from test_dashboard_helpers import app_as, make_store, metrics, open_page

from vigil.store.db import session_scope
from vigil.store.tables import (
    AIModelVersion,
    AuditLog,
    ChecklistEvent,
    ChecklistItem,
    DeadLetter,
    ReceivedMessage,
    User,
)


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def test_readiness_checklist_update_keeps_history(engine: Engine) -> None:
    make_store(engine, 100, monitor=False)
    at = open_page(app_as("administrator", "ada"), "readiness")
    assert metrics(at)["Items done"] == "0 of 4"  # the programme's items
    at.selectbox[0].select("neurovue-ich").run()
    assert metrics(at)["Items done"] == "0 of 9"
    at.selectbox[1].select("local_validation").run()
    at.selectbox[2].select("done")  # form widgets: values go with the submit
    at.text_input[0].input("Dr Lee")
    at.text_area[0].input("validation report 2026-01, 1,000 local cases")
    _button(at, "Save item").click().run()
    assert not at.exception
    assert metrics(at)["Items done"] == "1 of 9"
    with session_scope(engine) as s:
        item = s.exec(
            select(ChecklistItem).where(ChecklistItem.item_key == "local_validation")
        ).one()
        assert (item.model_id, item.status, item.owner, item.updated_by) == (
            1,
            "done",
            "Dr Lee",
            "ada",
        )
        events = s.exec(select(ChecklistEvent).where(ChecklistEvent.item_id == item.id)).all()
        assert [(e.status, e.by) for e in events] == [("done", "ada")]
        audit = s.exec(select(AuditLog).where(AuditLog.action == "checklist.update")).one()
        assert audit.actor == "ada" and audit.target == "checklist:1:local_validation"
    history = at.dataframe[-1].value
    assert list(history["status"]) == ["done"]


def test_inventory_and_ingest_health(engine: Engine) -> None:
    make_store(engine, 100, monitor=False)
    at = open_page(app_as("coe_member"), "inventory")
    assert metrics(at)["Models in the inventory"] == "2"
    versions = at.dataframe[-1].value
    with session_scope(engine) as s:
        n_versions = s.exec(
            select(func.count(AIModelVersion.id)).where(AIModelVersion.model_id == 2)
        ).one()  # the first model in name order is lungsight-nodule (id 2)
    assert len(versions) == n_versions
    at = open_page(app_as("coe_member"), "ingest")
    with session_scope(engine) as s:
        newest = s.exec(select(func.max(ReceivedMessage.received_at))).one()
        n_msgs = s.exec(
            select(func.count(ReceivedMessage.id)).where(
                ReceivedMessage.received_at
                >= newest.replace(tzinfo=UTC)
                - (datetime(2026, 1, 3, tzinfo=UTC) - datetime(2026, 1, 1, tzinfo=UTC))
            )
        ).one()
        n_dead = s.exec(select(func.count(DeadLetter.id))).one()
    m = metrics(at)
    assert m["Messages in the last 48 h"] == str(n_msgs)
    assert m["Dead letters"] == str(n_dead)
    dead = next(df.value for df in at.dataframe if "reason" in df.value.columns)
    assert "raw_encrypted" not in dead.columns and dead["messages"].sum() == n_dead
    unpaired = at.dataframe[-1].value
    assert set(unpaired["model"]) == {"neurovue-ich", "lungsight-nodule"}
    assert unpaired["results"].sum() == 100


def test_admin_adds_a_user_and_sees_the_audit_log(engine: Engine) -> None:
    make_store(engine, 50, monitor=False)
    at = open_page(app_as("admin", "root"), "users")
    at.text_input[0].input("frank")
    at.selectbox[0].select(at.selectbox[0].options[1])  # quality officer
    at.text_input[1].input("frank-password")
    _button(at, "Save user").click().run()
    assert not at.exception
    with session_scope(engine) as s:
        assert s.get(User, "frank").role == "quality_officer"
    at = open_page(at, "audit")
    log = at.dataframe[0].value
    assert list(log["action"]) == ["user.add"] and list(log["actor"]) == ["root"]
