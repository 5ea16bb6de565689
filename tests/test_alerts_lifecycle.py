"""Alert lifecycle in the store (SQLite and PostgreSQL): dedupe, ack, resolve, re-open, audit."""

from __future__ import annotations

import pytest
from sqlmodel import select

from monitors.alerting import AlertCandidate, alert_key
from vigil.alerts import acknowledge, get_alert, list_alerts, resolve, upsert_alerts
from vigil.errors import InvalidInputError, NotFoundError
from vigil.store.db import session_scope
from vigil.store.tables import AIModel, Alert, AuditLog


def _cand(window: str, value: float = 0.4, severity: str = "warning") -> AlertCandidate:
    return AlertCandidate(
        kind="drift",
        model="neurovue-ich",
        subgroup="site=EMC",
        metric="psi:scanner_model",
        value=value,
        threshold=0.1,
        severity=severity,
        summary=f"scanner_model drifted in {window}",
        evidence={"window": window, "windows": [window]},
    )


@pytest.fixture
def seeded(engine):
    with session_scope(engine) as s:
        s.add(AIModel(name="neurovue-ich", finding="ich"))
    return engine


def _audit(engine) -> list[tuple[str, str, str]]:
    with session_scope(engine) as s:
        return [
            (a.actor, a.action, a.target) for a in s.exec(select(AuditLog).order_by(AuditLog.id))
        ]


def test_rerun_updates_instead_of_duplicating(seeded) -> None:
    with session_scope(seeded) as s:
        first = upsert_alerts(s, candidates=[_cand("2026-03")])
    with session_scope(seeded) as s:
        second = upsert_alerts(s, candidates=[_cand("2026-04", value=0.9, severity="critical")])
    assert first[0]["action"] == "raised" and second[0]["action"] == "updated"
    assert first[0]["alert_id"] == second[0]["alert_id"]
    with session_scope(seeded) as s:
        rows = list(s.exec(select(Alert)))
        assert len(rows) == 1
        a = rows[0]
        assert a.key == alert_key("drift", "neurovue-ich", "site=EMC", "psi:scanner_model")
        assert a.value == 0.9 and a.severity == "critical" and a.status == "open"
        assert a.model_id is not None
        assert a.last_seen >= a.first_seen
    # raising is audited once; a silent update is not a lifecycle change
    assert [x[1] for x in _audit(seeded)] == ["alert.raise"]


def test_ack_resolve_reopen_with_audit(seeded) -> None:
    with session_scope(seeded) as s:
        aid = upsert_alerts(s, candidates=[_cand("2026-03")])[0]["alert_id"]
    with session_scope(seeded) as s:
        acknowledge(s, alert_id=aid, by="qo.smith", note="checking with EMC physics")
    # acknowledged alerts still absorb re-runs
    with session_scope(seeded) as s:
        assert upsert_alerts(s, candidates=[_cand("2026-03")])[0]["action"] == "updated"
    with session_scope(seeded) as s:
        resolve(s, alert_id=aid, by="qo.smith", note="new scanner, re-baselined")
        a = get_alert(s, alert_id=aid)
        assert (a.status, a.acknowledged_by, a.resolved_by) == ("resolved", "qo.smith", "qo.smith")
        assert a.acknowledge_note == "checking with EMC physics"
        assert a.resolve_note == "new scanner, re-baselined"
        assert a.acknowledged_at is not None and a.resolved_at >= a.acknowledged_at
    # the same, already resolved window does not come back ...
    with session_scope(seeded) as s:
        assert upsert_alerts(s, candidates=[_cand("2026-03")])[0]["action"] == "unchanged"
    # ... but a later window re-opens it as a NEW alert that points at the old one
    with session_scope(seeded) as s:
        out = upsert_alerts(s, candidates=[_cand("2026-05")])[0]
    assert out["action"] == "reopened" and out["alert_id"] != aid
    assert out["evidence"]["previous_alert_id"] == aid
    with session_scope(seeded) as s:
        assert len(list_alerts(s)) == 2
        assert [a["alert_id"] for a in list_alerts(s, status="open")] == [out["alert_id"]]
        assert (
            list_alerts(s, status="resolved", kind="drift", model="neurovue-ich")[0]["alert_id"]
            == aid
        )
    audit = _audit(seeded)
    assert [x[1] for x in audit] == [
        "alert.raise",
        "alert.acknowledge",
        "alert.resolve",
        "alert.reopen",
    ]
    assert audit[1] == ("qo.smith", "alert.acknowledge", f"alert:{aid}")


def test_invalid_transitions_and_unknown_ids(seeded) -> None:
    with session_scope(seeded) as s:
        aid = upsert_alerts(s, candidates=[_cand("2026-03")])[0]["alert_id"]
    with session_scope(seeded) as s, pytest.raises(NotFoundError, match="no alert with id 999"):
        acknowledge(s, alert_id=999, by="x")
    with session_scope(seeded) as s, pytest.raises(InvalidInputError, match="--by"):
        acknowledge(s, alert_id=aid, by="  ")
    with session_scope(seeded) as s:
        resolve(s, alert_id=aid, by="a")
    with session_scope(seeded) as s, pytest.raises(InvalidInputError, match="only an open alert"):
        acknowledge(s, alert_id=aid, by="b")
    with session_scope(seeded) as s, pytest.raises(InvalidInputError, match="already resolved"):
        resolve(s, alert_id=aid, by="b")
    with session_scope(seeded) as s, pytest.raises(InvalidInputError, match="--status"):
        list_alerts(s, status="closed")
    with session_scope(seeded) as s, pytest.raises(NotFoundError, match="no model named"):
        list_alerts(s, model="nope")
