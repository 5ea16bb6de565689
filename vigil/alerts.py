"""Alerts in the store: raise or update from monitor candidates, acknowledge, resolve, list.

Lifecycle: ``open`` -> ``acknowledged`` (who, note) -> ``resolved`` (who, note). A re-run of the
monitors updates the open (or acknowledged) alert with the same key; once resolved, the same
finding in a LATER window raises a new alert (``reopened``, pointing at the old one), while the
already-resolved windows never re-raise it. Every raise, re-open, acknowledgement and resolution
is written to the audit log in the same transaction. Keyword-only on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from monitors.alerting import KINDS, AlertCandidate
from vigil.audit import record
from vigil.errors import InvalidInputError, NotFoundError
from vigil.store.tables import AIModel, Alert
from vigil.store.types import utcnow

STATUSES = ("open", "acknowledged", "resolved")
ACTIVE = ("open", "acknowledged")
MONITOR_ACTOR = "vigil-monitor"


def alert_to_dict(alert: Alert, model_name: str | None = None) -> dict[str, Any]:
    """JSON-ready view of an alert (the AlertOutcome shape of monitors/SCHEMA.md, no action)."""

    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t else None

    return {
        "alert_id": alert.id,
        "key": alert.key,
        "kind": alert.kind,
        "model": model_name,
        "model_id": alert.model_id,
        "subgroup": alert.subgroup,
        "metric": alert.metric,
        "value": alert.value,
        "ci_low": alert.ci_low,
        "ci_high": alert.ci_high,
        "threshold": alert.threshold,
        "severity": alert.severity,
        "summary": alert.summary,
        "evidence": alert.evidence or {},
        "status": alert.status,
        "first_seen": iso(alert.first_seen),
        "last_seen": iso(alert.last_seen),
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": iso(alert.acknowledged_at),
        "acknowledge_note": alert.acknowledge_note,
        "resolved_by": alert.resolved_by,
        "resolved_at": iso(alert.resolved_at),
        "resolve_note": alert.resolve_note,
    }


def _model_names(session: Session) -> dict[int, str]:
    return {m.id: m.name for m in session.exec(select(AIModel))}


def _latest_window(evidence: dict[str, Any] | None) -> str:
    return str((evidence or {}).get("window") or "")


def _apply(alert: Alert, c: AlertCandidate, now: datetime) -> None:
    alert.value, alert.ci_low, alert.ci_high = c.value, c.ci_low, c.ci_high
    alert.threshold, alert.severity, alert.summary = c.threshold, c.severity, c.summary
    alert.subgroup, alert.metric = c.subgroup, c.metric
    alert.evidence = c.evidence
    alert.last_seen = now


def upsert_alerts(
    session: Session,
    *,
    candidates: Iterable[AlertCandidate],
    now: datetime | None = None,
    actor: str = MONITOR_ACTOR,
) -> list[dict[str, Any]]:
    """Store what the monitors found; returns one outcome per candidate (action + alert view).

    action: ``raised`` (new key), ``updated`` (an active alert with that key), ``reopened`` (the
    key's last alert was resolved and the finding is seen in a later window: a new alert row),
    ``unchanged`` (resolved, and nothing newer than what was resolved).
    """
    now = now or utcnow()
    models = {m.name: m.id for m in session.exec(select(AIModel))}
    outcomes: list[dict[str, Any]] = []
    for c in candidates:
        if c.kind not in KINDS:
            raise InvalidInputError(f"alert kind {c.kind!r} is not one of {', '.join(KINDS)}")
        latest = session.exec(
            select(Alert).where(Alert.key == c.key).order_by(col(Alert.id).desc())
        ).first()
        action = "raised"
        if latest is not None and latest.status in ACTIVE:
            _apply(latest, c, now)
            session.add(latest)
            outcomes.append({**alert_to_dict(latest, c.model), "action": "updated"})
            continue
        previous_id = None
        if latest is not None:  # resolved
            if _latest_window(c.evidence) <= _latest_window(latest.evidence):
                outcomes.append({**alert_to_dict(latest, c.model), "action": "unchanged"})
                continue
            action, previous_id = "reopened", latest.id
        alert = Alert(
            key=c.key,
            kind=c.kind,
            model_id=models.get(c.model),
            status="open",
            first_seen=now,
        )
        _apply(alert, c, now)
        if previous_id is not None:
            alert.evidence = {**c.evidence, "previous_alert_id": previous_id}
        session.add(alert)
        session.flush()
        record(
            session,
            actor=actor,
            action=f"alert.{'reopen' if action == 'reopened' else 'raise'}",
            target=f"alert:{alert.id}",
            detail={"key": c.key, "severity": c.severity, "previous_alert_id": previous_id},
        )
        outcomes.append({**alert_to_dict(alert, c.model), "action": action})
    return outcomes


def get_alert(session: Session, *, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFoundError(f"no alert with id {alert_id}; `vigil alerts list` shows the ids")
    return alert


def _require_person(by: str) -> str:
    by = (by or "").strip()
    if not by:
        raise InvalidInputError("say who you are: --by NAME")
    return by


def acknowledge(session: Session, *, alert_id: int, by: str, note: str = "") -> dict[str, Any]:
    """Mark an open alert as seen and being handled."""
    by = _require_person(by)
    alert = get_alert(session, alert_id=alert_id)
    if alert.status != "open":
        raise InvalidInputError(
            f"alert {alert_id} is {alert.status}; only an open alert can be acknowledged"
        )
    alert.status = "acknowledged"
    alert.acknowledged_by, alert.acknowledged_at, alert.acknowledge_note = by, utcnow(), note
    session.add(alert)
    record(
        session,
        actor=by,
        action="alert.acknowledge",
        target=f"alert:{alert_id}",
        detail={"note": note, "key": alert.key},
    )
    return alert_to_dict(alert, _model_names(session).get(alert.model_id))


def resolve(session: Session, *, alert_id: int, by: str, note: str = "") -> dict[str, Any]:
    """Close an open or acknowledged alert, saying what was done."""
    by = _require_person(by)
    alert = get_alert(session, alert_id=alert_id)
    if alert.status == "resolved":
        raise InvalidInputError(f"alert {alert_id} is already resolved (by {alert.resolved_by})")
    alert.status = "resolved"
    alert.resolved_by, alert.resolved_at, alert.resolve_note = by, utcnow(), note
    session.add(alert)
    record(
        session,
        actor=by,
        action="alert.resolve",
        target=f"alert:{alert_id}",
        detail={"note": note, "key": alert.key},
    )
    return alert_to_dict(alert, _model_names(session).get(alert.model_id))


def list_alerts(
    session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    model: str | None = None,
) -> list[dict[str, Any]]:
    """Alerts, newest first, filtered; unknown filter values raise InvalidInputError/NotFound."""
    if status is not None and status not in STATUSES:
        raise InvalidInputError(f"--status must be one of {', '.join(STATUSES)} (got {status!r})")
    if kind is not None and kind not in KINDS:
        raise InvalidInputError(f"--kind must be one of {', '.join(KINDS)} (got {kind!r})")
    names = _model_names(session)
    q = select(Alert).order_by(col(Alert.id).desc())
    if status:
        q = q.where(Alert.status == status)
    if kind:
        q = q.where(Alert.kind == kind)
    if model:
        ids = [i for i, n in names.items() if n == model]
        if not ids:
            raise NotFoundError(
                f"no model named {model!r}; known: {', '.join(sorted(names.values())) or 'none'}"
            )
        q = q.where(Alert.model_id == ids[0])
    return [alert_to_dict(a, names.get(a.model_id)) for a in session.exec(q)]
