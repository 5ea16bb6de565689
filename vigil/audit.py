"""The audit log: every write a person makes (who, what, when). Keyword-only on purpose."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from vigil.store.tables import AuditLog


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an audit entry to ``session`` (committed with the write it describes)."""
    entry = AuditLog(actor=actor, action=action, target=target, detail=detail)
    session.add(entry)
    return entry
