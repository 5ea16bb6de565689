"""Read everything a pack needs from the store into plain ``PackInputs`` (the only I/O in reports).

The case frame comes from ``vigil.caseframe.load_case_frame`` (the same loader the monitors and
``vigil export cases`` use), so the numbers in the pack are those of the exported window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, or_
from sqlmodel import select

from reports.window import Window, add_months
from vigil.errors import NotFoundError
from vigil.store.db import session_scope
from vigil.store.tables import (
    AIModel,
    AIModelVersion,
    Alert,
    ChecklistEvent,
    ChecklistItem,
    RescoreResult,
    Setting,
    Site,
    Study,
)

ROI_SETTING = "roi_inputs"  # the key the dashboard's ROI page saves its inputs under
TREND_MONTHS = 6  # months of history drawn in the trend charts (the period included)


@dataclass(slots=True)
class PackInputs:
    """Everything content.build_pack needs, as plain data (no sessions, no ORM objects)."""

    window: Window
    frame: pd.DataFrame  # case frame from go-live/reference (or trend start) to window end
    models: list[dict[str, Any]]  # AIModel columns
    model_versions: list[dict[str, Any]]  # AIModelVersion rows (+ "model" name)
    alerts: list[dict[str, Any]]  # Alert columns (+ "model" name)
    checklist: list[dict[str, Any]]  # ChecklistItem columns (+ "scope")
    checklist_events: list[dict[str, Any]]  # ChecklistEvent columns (+ item title and scope)
    rescores: pd.DataFrame  # RescoreResult rows of studies in the window (+ model, exam_at)
    sites: dict[str, str]  # code -> name
    roi_inputs: dict[str, Any] | None
    model_filter: str | None = None
    notes: list[str] = field(default_factory=list)


def _row(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in type(obj).model_fields}


def monitor_start(window: Window, models: list[dict[str, Any]]) -> datetime:
    """Earliest exam time the pack's monitors read: trend months, and go-live (the monitors'
    reference)."""
    start = add_months(window.start, -(TREND_MONTHS - 1))
    for m in models:
        gl = m.get("go_live_date")
        if gl is not None:
            gl_dt = datetime(gl.year, gl.month, 1, tzinfo=window.start.tzinfo)
            start = min(start, gl_dt)
    return start


def frame_start(window: Window, models: list[dict[str, Any]]) -> datetime:
    """Earliest exam time the pack loads: the monitors' start, and the days before go-live that
    the turnaround comparison reads (monitors.turnaround; the monitors do not see those)."""
    from reports.content import BEFORE_GO_LIVE_DAYS

    start = monitor_start(window, models)
    for m in models:
        gl = m.get("go_live_date")
        if gl is not None:
            gl_dt = datetime(gl.year, gl.month, gl.day, tzinfo=window.start.tzinfo)
            start = min(start, gl_dt - timedelta(days=BEFORE_GO_LIVE_DAYS))
    return start


def gather(engine: Engine, window: Window, *, model: str | None = None) -> PackInputs:
    """Load the case frame and the governance records for ``window`` (optionally one model)."""
    from vigil.caseframe import load_case_frame

    with session_scope(engine) as s:
        q = select(AIModel).order_by(AIModel.name)
        if model:
            q = q.where(AIModel.name == model)
        models = [_row(m) for m in s.exec(q).all()]
        if model and not models:
            names = ", ".join(sorted(s.exec(select(AIModel.name)).all())) or "none registered"
            raise NotFoundError(f"no model named {model!r} (known: {names})")
        names_by_id = {m["id"]: m["name"] for m in models}
        ids = list(names_by_id)

        versions = []
        for v in s.exec(select(AIModelVersion).where(AIModelVersion.model_id.in_(ids))).all():
            versions.append({**_row(v), "model": names_by_id.get(v.model_id, "")})

        aq = select(Alert).where(
            or_(Alert.first_seen.is_(None), Alert.first_seen < window.end),
            or_(Alert.resolved_at.is_(None), Alert.resolved_at >= window.start),
        )
        if model:
            aq = aq.where(Alert.model_id.in_(ids))
        alerts = [
            {**_row(a), "model": names_by_id.get(a.model_id, "")}
            for a in s.exec(aq.order_by(Alert.id)).all()
        ]

        cq = select(ChecklistItem)
        if model:
            cq = cq.where(or_(ChecklistItem.model_id.is_(None), ChecklistItem.model_id.in_(ids)))
        all_names = {m.id: m.name for m in s.exec(select(AIModel)).all()}
        items = s.exec(cq.order_by(ChecklistItem.model_id, ChecklistItem.item_key)).all()
        checklist = [
            {
                **_row(i),
                "scope": all_names.get(i.model_id, "programme") if i.model_id else "programme",
            }
            for i in items
        ]
        by_item = {c["id"]: c for c in checklist}
        events = []
        if by_item:
            eq = select(ChecklistEvent).where(
                ChecklistEvent.item_id.in_(list(by_item)),
                ChecklistEvent.at >= window.start,
                ChecklistEvent.at < window.end,
            )
            for e in s.exec(eq.order_by(ChecklistEvent.at)).all():
                it = by_item[e.item_id]
                events.append(
                    {**_row(e), "item": it["title"] or it["item_key"], "scope": it["scope"]}
                )

        rq = (
            select(RescoreResult, Study.exam_started_at)
            .join(Study, Study.id == RescoreResult.study_id)
            .where(RescoreResult.model_id.in_(ids))
            .where(Study.exam_started_at >= window.start, Study.exam_started_at < window.end)
        )
        rrows = [
            {**_row(r), "model": names_by_id.get(r.model_id, ""), "exam_at": at}
            for r, at in s.exec(rq).all()
        ]
        sites = {x.code: x.name for x in s.exec(select(Site).order_by(Site.code)).all()}
        roi = s.get(Setting, ROI_SETTING)
        roi_inputs = dict(roi.value) if roi is not None and roi.value else None

    frame = load_case_frame(
        engine, since=frame_start(window, models), until=window.end, model=model
    )
    return PackInputs(
        window=window,
        frame=frame,
        models=models,
        model_versions=versions,
        alerts=alerts,
        checklist=checklist,
        checklist_events=events,
        rescores=pd.DataFrame(rrows),
        sites=sites,
        roi_inputs=roi_inputs,
        model_filter=model,
    )
