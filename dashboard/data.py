"""The dashboard's data layer: load from the store, call the monitors, cache the aggregates.

Pages only call functions here and render. Caches are keyed by the database URL and a *data
version* (the newest row ids of the tables a result depends on), so a new `vigil monitor` run, a
new ingest or an adjudication shows up on the next interaction, while a filter change never
reloads the case frame: the frame is held once per process (``st.cache_resource``, no copy) and
small aggregates are memoised (``st.cache_data``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import Engine, func
from sqlmodel import select

from vigil.audit import record
from vigil.errors import InvalidInputError, NotFoundError
from vigil.settings import Settings, get_settings
from vigil.store.db import open_store, session_scope
from vigil.store.tables import (
    AIModel,
    AIModelVersion,
    AIResult,
    Alert,
    AuditLog,
    ChecklistEvent,
    ChecklistItem,
    DeadLetter,
    FinalRead,
    MonitorRun,
    ReceivedMessage,
    RescoreResult,
    Setting,
    Study,
)
from vigil.store.types import utcnow
from vigil.users import Identity, Permission

# --- plumbing -----------------------------------------------------------------------------


def settings() -> Settings:
    return get_settings()


def engine() -> Engine:
    return open_store(settings())


def url() -> str:
    return settings().effective_database_url


@dataclass(frozen=True, slots=True)
class DataVersion:
    """Newest ids of the tables results depend on: a cache key that changes with the data."""

    monitor_run: int
    ai_result: int
    report_read: int  # newest FinalRead that is not an adjudication
    rescore: int
    ai_received: str  # newest AIResult.received_at: a re-sent result updates its row in place
    adjudication: int  # newest adjudication (its audit entry)

    @property
    def frame_key(self) -> tuple:
        """What forces a reload of the case frame from the store (a monitor run too: it may
        follow demographic updates). Adjudications do not: they are overlaid (view_key)."""
        return (self.ai_result, self.report_read, self.ai_received, self.monitor_run)

    @property
    def view_key(self) -> tuple:
        """The frame as pages see it: the loaded frame plus the adjudications made since."""
        return (*self.frame_key, self.adjudication)


def data_version() -> DataVersion:
    """A few indexed lookups: cheap on every rerun, even with a million studies."""
    with session_scope(engine()) as s:
        run, res, rescore = (
            s.exec(select(func.max(col))).one() or 0
            for col in (MonitorRun.id, AIResult.id, RescoreResult.id)
        )
        # walks the primary key down from the top: adjudications are few
        report = s.exec(
            select(FinalRead.id)
            .where(FinalRead.label_source != "adjudication")
            .order_by(FinalRead.id.desc())
            .limit(1)
        ).first()
        received = s.exec(select(func.max(AIResult.received_at))).one()
        adj = s.exec(
            select(func.max(AuditLog.id)).where(AuditLog.action == ADJUDICATE_ACTION)
        ).one()
    return DataVersion(
        monitor_run=int(run),
        ai_result=int(res),
        report_read=int(report or 0),
        rescore=int(rescore),
        ai_received=str(received),
        adjudication=int(adj or 0),
    )


# --- monitor results ----------------------------------------------------------------------


@st.cache_resource(show_spinner=False, max_entries=4)  # shared read-only: no copy per rerun
def _run_results(db_url: str, run_id: int) -> dict[str, Any] | None:
    with session_scope(engine()) as s:
        run = s.get(MonitorRun, run_id)
        return dict(run.results or {}) if run else None


def latest_results() -> dict[str, Any] | None:
    """The last stored `vigil monitor` results (monitors/SCHEMA.md), or None before any run."""
    v = data_version()
    if not v.monitor_run:
        return None
    return _run_results(url(), v.monitor_run)


def latest_run_meta() -> dict[str, Any] | None:
    res = latest_results()
    return (res or {}).get("run")


def model_results(results: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return dict((results or {}).get("models") or {})


# --- the case frame -----------------------------------------------------------------------
#
# Loading a million-study frame takes tens of seconds, so no page waits for it: pages whose
# numbers the last `vigil monitor` run already holds read those, and the frame is loaded once
# per process and data version in a background thread for what needs case-level data (the
# threshold what-if, weekly trends, per-site figures, distributions, discordance review).

# Tests that need the case-level sections on the first render turn this off (load in-line).
LOAD_FRAME_IN_BACKGROUND = True
_FRAMES_KEPT = 2  # the current data version and the one before (a reload in progress)
_loads: dict[tuple, Future] = {}
_loads_lock = threading.Lock()
_adbc_lock = threading.Lock()


def _load_into(fut: Future, eng: Engine, adjudication: int) -> None:
    import vigil.caseframe
    from vigil.caseframe import load_case_frame

    try:
        if eng.dialect.name == "sqlite":
            # The ADBC driver bundles its own SQLite library. Two SQLite libraries in one
            # process break each other's POSIX locks on a WAL database (sqlite.org/
            # howtocorrupt.html 2.2): the server's logins then failed and reads saw
            # "disk I/O error". The dashboard also writes, so it reads through sqlite3.
            with _adbc_lock:
                before, vigil.caseframe.USE_ADBC = vigil.caseframe.USE_ADBC, False
                try:
                    frame = load_case_frame(eng)
                finally:
                    vigil.caseframe.USE_ADBC = before
        else:
            frame = load_case_frame(eng)
        fut.set_result((frame, adjudication))
    except BaseException as exc:  # handed to whoever waits on the frame
        fut.set_exception(exc)


def _frame_load(db_url: str, key: tuple) -> Future:
    """The (started) load of the frame for this data version: one per process and version."""
    with _loads_lock:
        fut = _loads.get((db_url, key))
        if fut is not None:
            return fut
        fut = Future()
        _loads[(db_url, key)] = fut
        for old in [k for k, f in _loads.items() if f.done()][: max(0, len(_loads) - _FRAMES_KEPT)]:
            del _loads[old]
    args = (fut, engine(), data_version().adjudication)
    if LOAD_FRAME_IN_BACKGROUND:
        threading.Thread(target=_load_into, args=args, name="vigil-frame", daemon=True).start()
    else:
        _load_into(*args)
    return fut


def forget_frames() -> None:
    """Drop every loaded frame and background result (the benchmark's cold start; tests)."""
    with _loads_lock:
        _loads.clear()
        _unpaired_jobs.clear()
    _frame_view.clear()


def _frame(db_url: str, key: tuple) -> tuple[pd.DataFrame, int]:
    """The frame as loaded, and the adjudication version it already contains (waits)."""
    return _frame_load(db_url, key).result()


def frame_ready() -> bool:
    """Whether the case frame of the current data version is loaded (starts loading it)."""
    key = (url(), data_version().frame_key)
    fut = _frame_load(*key)
    if fut.done() and fut.exception() is not None:
        with _loads_lock:
            _loads.pop(key, None)  # the next render tries again
        raise fut.exception()  # e.g. the store went away: the page's friendly error
    return fut.done()


def frame_loading_started() -> bool:
    """Whether any page has asked for the current frame yet (tests: pages that must not)."""
    with _loads_lock:
        return (url(), data_version().frame_key) in _loads


@st.cache_resource(show_spinner=False, max_entries=2)
def _frame_view(db_url: str, key: tuple, adjudication: int) -> pd.DataFrame:
    """The loaded frame with every current adjudication applied (a copy, only when some were
    made after loading: a million-row reload per adjudication would stall the reviewer)."""
    base, loaded_adj = _frame(db_url, key)
    if adjudication <= loaded_adj:
        return base
    with session_scope(engine()) as s:
        rows = s.exec(
            select(FinalRead.study_id, FinalRead.finding, FinalRead.label).where(
                FinalRead.label_source == "adjudication",
                FinalRead.is_current == True,  # noqa: E712
            )
        ).all()
    frame = base.copy()
    if not rows:
        return frame
    adj = pd.DataFrame(rows, columns=["study_id", "finding", "label"])
    idx = pd.MultiIndex.from_arrays([frame["study_id"], frame["finding"].astype("string")])
    where = idx.get_indexer(pd.MultiIndex.from_arrays([adj["study_id"], adj["finding"]]))
    hit = where >= 0
    pos, labels = where[hit], adj["label"].to_numpy()[hit]
    state = pd.Series(labels).where(pd.Series(labels).isin(["positive", "negative"]), "uncertain")
    num = state.map({"positive": 1, "negative": 0}).astype("Int8")
    if "adjudication" not in frame["label_source"].cat.categories:
        frame["label_source"] = frame["label_source"].cat.add_categories(["adjudication"])
    frame.iloc[pos, frame.columns.get_loc("label")] = num.to_numpy()
    frame.iloc[pos, frame.columns.get_loc("label_state")] = state.to_numpy()
    frame.iloc[pos, frame.columns.get_loc("label_source")] = "adjudication"
    return frame


def case_frame() -> pd.DataFrame:
    """Every case (study x model x finding), loaded once per data version and process, with
    later adjudications overlaid. Callers must not modify it (shared without copying).
    Waits for the load: pages check :func:`frame_ready` first and show a loading state."""
    v = data_version()
    return _frame_view(url(), v.frame_key, v.adjudication)


# --- models -------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, ttl=60)
def _models(db_url: str) -> list[dict[str, Any]]:
    with session_scope(engine()) as s:
        return [m.model_dump() for m in s.exec(select(AIModel).order_by(AIModel.name))]


def models() -> list[dict[str, Any]]:
    return _models(url())


def model_names() -> list[str]:
    return [m["name"] for m in models()]


def model_versions(model_id: int) -> pd.DataFrame:
    with session_scope(engine()) as s:
        rows = s.exec(
            select(AIModelVersion)
            .where(AIModelVersion.model_id == model_id)
            .order_by(AIModelVersion.first_seen_at)
        ).all()
        return pd.DataFrame(
            [
                {
                    "version": r.version,
                    "first seen": r.first_seen_at,
                    "changed by": r.changed_by,
                    "note": r.note,
                }
                for r in rows
            ]
        )


# --- alerts -------------------------------------------------------------------------------

ALERT_COLUMNS = [
    "id",
    "kind",
    "model",
    "subgroup",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "threshold",
    "severity",
    "status",
    "summary",
    "first_seen",
    "last_seen",
    "acknowledged_by",
    "acknowledge_note",
    "resolved_by",
    "resolve_note",
]


def alerts(
    *,
    status: list[str] | None = None,
    kind: list[str] | None = None,
    model: list[str] | None = None,
) -> pd.DataFrame:
    """The alert inbox as a table, newest first (small table: no cache, always current)."""
    names = {m["id"]: m["name"] for m in models()}
    with session_scope(engine()) as s:
        q = select(Alert)
        if status:
            q = q.where(Alert.status.in_(status))
        if kind:
            q = q.where(Alert.kind.in_(kind))
        rows = s.exec(q.order_by(Alert.last_seen.desc(), Alert.id.desc())).all()
    out = []
    for a in rows:
        d = a.model_dump()
        d["model"] = names.get(a.model_id, "") if a.model_id else ""
        out.append({c: d.get(c) for c in ALERT_COLUMNS})
    df = pd.DataFrame(out, columns=ALERT_COLUMNS)
    if model:
        df = df[df["model"].isin(model)]
    return df.reset_index(drop=True)


def _alert_action(alert_id: int, who: Identity, note: str, action: str) -> None:
    """Acknowledge or resolve through the lifecycle module (which writes the audit entry)."""
    from vigil import alerts as lifecycle

    who.require(Permission.ACT_ON_ALERTS)
    note = (note or "").strip()
    if action == "resolve" and not note:
        raise InvalidInputError("a resolution needs a note saying what was done")
    with session_scope(engine()) as s:
        getattr(lifecycle, action)(s, alert_id=alert_id, by=who.username, note=note)


def acknowledge_alert(alert_id: int, who: Identity, note: str = "") -> None:
    _alert_action(alert_id, who, note, "acknowledge")


def resolve_alert(alert_id: int, who: Identity, note: str) -> None:
    _alert_action(alert_id, who, note, "resolve")


def note_alert(alert_id: int, who: Identity, note: str) -> None:
    """Add a note to an alert without changing its status. Notes live in the audit log (a
    monitor run rewrites the alert's evidence, the log is never rewritten)."""
    who.require(Permission.ACT_ON_ALERTS)
    note = (note or "").strip()
    if not note:
        raise InvalidInputError("the note is empty")
    with session_scope(engine()) as s:
        if s.get(Alert, alert_id) is None:
            raise NotFoundError(f"no alert {alert_id}")
        record(
            s,
            actor=who.username,
            action="alert.note",
            target=f"alert:{alert_id}",
            detail={"note": note},
        )


def alert_history(alert_ids: list[int]) -> pd.DataFrame:
    """Who acknowledged, resolved or noted these alerts, and what they wrote (newest first)."""
    targets = [f"alert:{i}" for i in alert_ids]
    with session_scope(engine()) as s:
        rows = s.exec(
            select(AuditLog)
            .where(AuditLog.target.in_(targets), AuditLog.action.startswith("alert."))
            .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        ).all()
    return pd.DataFrame(
        [
            {
                "alert": int(r.target.split(":")[1]),
                "at": r.at,
                "by": r.actor,
                "action": r.action.removeprefix("alert."),
                "note": (r.detail or {}).get("note", ""),
            }
            for r in rows
        ],
        columns=["alert", "at", "by", "action", "note"],
    )


# --- discordance and adjudication ---------------------------------------------------------

ADJUDICATE_ACTION = "case.adjudicate"
ADJUDICATIONS = {
    "ai_right": "AI right",
    "radiologist_right": "Radiologist right",
    "indeterminate": "Indeterminate",
}


def adjudicate(
    study_id: int,
    finding: str,
    verdict: str,
    who: Identity,
    *,
    ai_call: bool,
    rad_label: str,
    note: str = "",
) -> FinalRead:
    """The quality officer's decision becomes the current reference label, source recorded.

    ``ai_call`` and ``rad_label`` are what the officer saw; the new label follows from them.
    Earlier reads stay (is_current false), so the history is never lost."""
    who.require(Permission.ADJUDICATE)
    if verdict not in ADJUDICATIONS:
        raise InvalidInputError(f"verdict must be one of {', '.join(ADJUDICATIONS)}")
    if verdict == "ai_right":
        label = "positive" if ai_call else "negative"
    elif verdict == "radiologist_right":
        label = rad_label
    else:
        label = "uncertain"
    with session_scope(engine()) as s:
        if s.get(Study, study_id) is None:
            raise NotFoundError(f"no study {study_id}")
        for old in s.exec(
            select(FinalRead).where(
                FinalRead.study_id == study_id,
                FinalRead.finding == finding,
                FinalRead.is_current == True,  # noqa: E712
            )
        ):
            old.is_current = False
            s.add(old)
        row = FinalRead(
            study_id=study_id,
            finding=finding,
            label=label,
            label_source="adjudication",
            evidence=f"adjudication: {ADJUDICATIONS[verdict]}",
            report_status="F",
            radiologist=None,
            reported_at=utcnow(),
            is_current=True,
            source_message_id=f"adjudication:{who.username}",
        )
        s.add(row)
        record(
            s,
            actor=who.username,
            action=ADJUDICATE_ACTION,
            target=f"study:{study_id}:{finding}",
            detail={"verdict": verdict, "label": label, "previous": rad_label, "note": note[:500]},
        )
    return row


def rescore_rows(study_ids: list[int]) -> pd.DataFrame:
    """Re-scoring results of these studies (saliency PNG paths where the job made one)."""
    if not study_ids:
        return pd.DataFrame()
    with session_scope(engine()) as s:
        rows = s.exec(select(RescoreResult).where(RescoreResult.study_id.in_(study_ids))).all()
        return pd.DataFrame([r.model_dump() for r in rows])


def deidentified_export(df: pd.DataFrame) -> pd.DataFrame:
    """Discordant cases for retraining: no accession, no exact dates, no study id.

    A case key is a one-way hash of the study id (stable across exports, not reversible
    without the store); ages are banded and times reduced to the month."""
    keep = [
        "model",
        "finding",
        "site",
        "modality",
        "procedure",
        "scanner_manufacturer",
        "scanner_model",
        "patient_class",
        "age_band",
        "sex",
        "score",
        "threshold",
        "ai_call",
        "label",
        "label_state",
        "label_source",
    ]
    out = df[[c for c in keep if c in df.columns]].copy()
    out.insert(
        0,
        "case_key",
        [hashlib.sha256(f"vigil-case:{i}".encode()).hexdigest()[:16] for i in df["study_id"]],
    )
    if "exam_at" in df:
        out["exam_month"] = df["exam_at"].dt.strftime("%Y-%m")
    return out


# --- readiness checklist ------------------------------------------------------------------

# The committee's checklist, plus the inventory / acceptance-testing / monitoring criteria
# recognised AI governance programmes ask for (e.g. ACR ARCH-AI, the CoE's own policy).
CHECKLIST_ITEMS: list[tuple[str, str]] = [
    ("clinical_problem", "A defined clinical problem with measurable outcomes"),
    ("local_validation", "A representative local validation dataset, results reviewed"),
    ("it_infrastructure", "IT infrastructure for inference (on-premise or cloud) in place"),
    ("buy_in", "Clinical and IT buy-in (named champions in both)"),
    ("monitoring_plan", "A monitoring and retraining plan (metrics, thresholds, owner)"),
    ("privacy_regulatory", "Privacy and regulatory requirements addressed (clearance, DPIA)"),
    ("inventory", "Listed in the AI inventory with a complete model card"),
    ("acceptance_testing", "Acceptance testing passed against the local baseline"),
    ("monitoring_criteria", "Monitoring criteria agreed: alert thresholds and who responds"),
]
PROGRAMME_ITEMS: list[tuple[str, str]] = [
    ("governance_body", "A governance body (CoE) with terms of reference meets regularly"),
    ("ai_inventory", "An inventory of every AI tool in clinical use is kept current"),
    ("incident_process", "A process to report and review AI-related incidents"),
    ("privacy_regulatory", "Privacy and regulatory requirements addressed for the programme"),
]
CHECKLIST_STATUSES = ["not_started", "in_progress", "done", "na"]


def checklist(model_id: int | None) -> pd.DataFrame:
    """Checklist rows for a model (or the programme), every defined item present."""
    defs = CHECKLIST_ITEMS if model_id is not None else PROGRAMME_ITEMS
    with session_scope(engine()) as s:
        rows = {
            r.item_key: r
            for r in s.exec(select(ChecklistItem).where(ChecklistItem.model_id == model_id))
        }
    out = []
    for key, title in defs:
        r = rows.pop(key, None)
        out.append(
            {
                "item_key": key,
                "item": title,
                "status": r.status if r else "not_started",
                "owner": r.owner if r else "",
                "evidence": r.evidence if r else "",
                "updated": r.updated_at if r else None,
                "by": r.updated_by if r else "",
            }
        )
    for key, r in rows.items():  # items added outside the defaults
        out.append(
            {
                "item_key": key,
                "item": r.title,
                "status": r.status,
                "owner": r.owner,
                "evidence": r.evidence,
                "updated": r.updated_at,
                "by": r.updated_by,
            }
        )
    return pd.DataFrame(out)


def update_checklist_item(
    model_id: int | None,
    item_key: str,
    who: Identity,
    *,
    status: str,
    owner: str,
    evidence: str,
    note: str = "",
) -> None:
    who.require(Permission.EDIT_CHECKLIST)
    if status not in CHECKLIST_STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(CHECKLIST_STATUSES)}")
    titles = dict(CHECKLIST_ITEMS if model_id is not None else PROGRAMME_ITEMS)
    now = utcnow()
    with session_scope(engine()) as s:
        item = s.exec(
            select(ChecklistItem).where(
                ChecklistItem.model_id == model_id, ChecklistItem.item_key == item_key
            )
        ).first()
        if item is None:
            item = ChecklistItem(
                model_id=model_id, item_key=item_key, title=titles.get(item_key, item_key)
            )
        item.status, item.owner, item.evidence = status, owner.strip(), evidence.strip()
        item.updated_at, item.updated_by = now, who.username
        s.add(item)
        s.flush()
        s.add(
            ChecklistEvent(
                item_id=item.id,
                at=now,
                by=who.username,
                status=status,
                note=note.strip() or f"owner={owner.strip()}; evidence updated",
            )
        )
        record(
            s,
            actor=who.username,
            action="checklist.update",
            target=f"checklist:{model_id or 'programme'}:{item_key}",
            detail={"status": status, "owner": owner, "evidence": evidence, "note": note},
        )


def checklist_history(model_id: int | None) -> pd.DataFrame:
    with session_scope(engine()) as s:
        rows = s.exec(
            select(ChecklistEvent, ChecklistItem)
            .join(ChecklistItem, ChecklistEvent.item_id == ChecklistItem.id)
            .where(ChecklistItem.model_id == model_id)
            .order_by(ChecklistEvent.at.desc())
        ).all()
        return pd.DataFrame(
            [
                {
                    "at": e.at,
                    "item": i.title or i.item_key,
                    "status": e.status,
                    "by": e.by,
                    "note": e.note,
                }
                for e, i in rows
            ],
            columns=["at", "item", "status", "by", "note"],
        )


# --- settings kept in the store (ROI inputs) -----------------------------------------------

ROI_SETTING = "roi_inputs"


def stored_setting(key: str) -> dict[str, Any] | None:
    with session_scope(engine()) as s:
        row = s.get(Setting, key)
        return dict(row.value) if row and row.value else None


def save_setting(key: str, value: dict[str, Any], who: Identity, permission: Permission) -> None:
    who.require(permission)
    with session_scope(engine()) as s:
        row = s.get(Setting, key) or Setting(key=key)
        old = row.value
        row.value, row.updated_at, row.updated_by = value, utcnow(), who.username
        s.add(row)
        record(
            s,
            actor=who.username,
            action="setting.update",
            target=f"setting:{key}",
            detail={"old": old, "new": value},
        )


APP_SETTING = "dashboard"
# Admins manage users and settings (issue 6): the admin-only permission vigil.users has for that
SETTINGS_PERMISSION = Permission.MANAGE_USERS


@dataclass(frozen=True, slots=True)
class AppSetting:
    """One editable application setting kept in the Setting table (admins edit it)."""

    key: str
    label: str
    default: int
    low: int
    high: int
    help: str


APP_SETTINGS: tuple[AppSetting, ...] = (
    AppSetting(
        "discordance_rows_shown",
        "Discordant cases listed on the review page",
        500,
        50,
        5000,
        "Newest first; the de-identified export always has every case.",
    ),
    AppSetting(
        "ingest_default_hours",
        "Ingest health: default window (hours)",
        48,
        6,
        168,
        "The window the ingest health page opens with.",
    ),
)


def app_settings() -> dict[str, int]:
    """The effective application settings: stored values, else the defaults."""
    stored = stored_setting(APP_SETTING) or {}
    out = {}
    for spec in APP_SETTINGS:
        v = stored.get(spec.key)
        out[spec.key] = (
            int(v) if isinstance(v, int) and spec.low <= v <= spec.high else spec.default
        )
    return out


def save_app_settings(values: dict[str, Any], who: Identity) -> None:
    """Validate and store the application settings (admins; audited as setting.update)."""
    specs = {spec.key: spec for spec in APP_SETTINGS}
    unknown = set(values) - set(specs)
    if unknown:
        raise InvalidInputError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    clean = app_settings()
    for key, v in values.items():
        spec = specs[key]
        if isinstance(v, bool) or not isinstance(v, int) or not spec.low <= v <= spec.high:
            raise InvalidInputError(f"{spec.label}: a whole number {spec.low}-{spec.high}")
        clean[key] = int(v)
    save_setting(APP_SETTING, clean, who, SETTINGS_PERMISSION)


def effective_settings() -> pd.DataFrame:
    """What this server runs with (vigil.settings), for admins. Secrets never leave: only
    whether the public demo secrets are in use."""
    from sqlalchemy.engine import make_url

    cfg = settings()
    try:
        db = make_url(cfg.effective_database_url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show its scheme only
        db = cfg.effective_database_url.split("://", 1)[0] + "://…"
    rows = [
        ("database_url", db),
        ("data_dir", str(cfg.data_dir)),
        ("demo", str(cfg.demo)),
        (
            "pseudonym_secret / deadletter_key",
            "PUBLIC DEMO SECRETS IN USE" if cfg.uses_demo_secrets else "set (not shown)",
        ),
        ("deadletter_retention_days", str(cfg.deadletter_retention_days)),
        ("max_message_bytes", str(cfg.max_message_bytes)),
        ("listen_host", cfg.listen_host),
        ("listen_port", str(cfg.listen_port)),
        ("profiles_dir", str(cfg.profiles_dir or "")),
        ("auth_header", cfg.auth_header or "(local accounts)"),
    ]
    return pd.DataFrame(rows, columns=["setting", "value"])


# --- ingest health ------------------------------------------------------------------------


def messages_per_hour(hours: int = 48) -> pd.DataFrame:
    """Messages per sender per hour over the last ``hours`` hours of received data."""
    with session_scope(engine()) as s:
        newest = s.exec(select(func.max(ReceivedMessage.received_at))).one()
        if newest is None:
            return pd.DataFrame(columns=["sender", "hour", "outcome", "messages"])
        since = newest - timedelta(hours=hours)
        rows = s.exec(
            select(
                ReceivedMessage.sender, ReceivedMessage.received_at, ReceivedMessage.outcome
            ).where(ReceivedMessage.received_at >= since)
        ).all()
    df = pd.DataFrame(rows, columns=["sender", "received_at", "outcome"])
    df["hour"] = pd.to_datetime(df["received_at"], utc=True).dt.floor("h")
    return (
        df.groupby(["sender", "hour", "outcome"], observed=True)
        .size()
        .rename("messages")
        .reset_index()
    )


def dead_letters_by_reason() -> pd.DataFrame:
    """Dead letters by reason code and sender: reasons only, never the (encrypted) message."""
    with session_scope(engine()) as s:
        rows = s.exec(
            select(
                DeadLetter.reason_code,
                DeadLetter.sender,
                func.count(DeadLetter.id),
                func.max(DeadLetter.received_at),
                func.sum(func.coalesce(func.length(DeadLetter.replay_outcome), 0)),
            ).group_by(DeadLetter.reason_code, DeadLetter.sender)
        ).all()
    df = pd.DataFrame(rows, columns=["reason", "sender", "messages", "latest", "_replayed"])
    return df.drop(columns="_replayed").sort_values("messages", ascending=False)


def _unpaired_rows(eng: Any, hour: str) -> list[dict[str, Any]] | None:
    try:
        from connectors.store_writer import unpaired_summary
    except ImportError:
        return None
    now = datetime.fromisoformat(hour)
    return [dataclasses.asdict(r) for r in unpaired_summary(eng, now)]


UNPAIRED_PENDING = object()
_unpaired_jobs: dict[tuple, Future] = {}


def unpaired_if_ready() -> list[dict[str, Any]] | object | None:
    """AI results paired with a read, waiting, or stale (the connectors' summary; None when
    the connectors are not installed). A scan of every AI result (seconds at a million
    studies), so computed in a background thread once per data version and hour (its 'stale'
    cut-off moves with time); ``UNPAIRED_PENDING`` until done, so the ingest page never waits."""
    hour = utcnow().replace(minute=0, second=0, microsecond=0).isoformat()
    key = (url(), data_version().view_key, hour)
    with _loads_lock:
        fut = _unpaired_jobs.get(key)
        start = fut is None
        if start:
            fut = _unpaired_jobs[key] = Future()
            for old in [k for k, f in _unpaired_jobs.items() if f.done()][:-2]:
                del _unpaired_jobs[old]
    if start:
        eng = engine()

        def job() -> None:
            try:
                fut.set_result(_unpaired_rows(eng, hour))
            except BaseException as exc:
                fut.set_exception(exc)

        if LOAD_FRAME_IN_BACKGROUND:
            threading.Thread(target=job, name="vigil-unpaired", daemon=True).start()
        else:
            job()
    if not fut.done():
        return UNPAIRED_PENDING
    if fut.exception() is not None:
        with _loads_lock:
            _unpaired_jobs.pop(key, None)
        raise fut.exception()
    return fut.result()


# --- audit --------------------------------------------------------------------------------


def audit_log(limit: int = 500, actor: str = "", action: str = "") -> pd.DataFrame:
    with session_scope(engine()) as s:
        q = select(AuditLog).order_by(AuditLog.at.desc(), AuditLog.id.desc())
        if actor:
            q = q.where(AuditLog.actor == actor)
        if action:
            q = q.where(AuditLog.action.startswith(action))
        rows = s.exec(q.limit(limit)).all()
    return pd.DataFrame(
        [
            {
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "detail": r.detail,
            }
            for r in rows
        ],
        columns=["at", "actor", "action", "target", "detail"],
    )


# --- turnaround and volume (pure functions in dashboard.turnaround, cached here) -----------


def go_live_dates() -> dict[str, Any]:
    return {m["name"]: m["go_live_date"] for m in models()}


@st.cache_data(show_spinner=False, max_entries=16)
def _turnaround(db_url: str, key: tuple, measure: str, go_live: tuple) -> pd.DataFrame:
    from dashboard.turnaround import compare_medians

    return compare_medians(case_frame(), dict(go_live), measure)


def turnaround_table(measure: str) -> pd.DataFrame:
    gl = tuple(sorted(go_live_dates().items()))
    return _turnaround(url(), data_version().view_key, measure, gl)


@st.cache_data(show_spinner=False, max_entries=4)
def _read_cov(db_url: str, key: tuple) -> pd.DataFrame:
    from dashboard.turnaround import read_time_coverage

    return read_time_coverage(case_frame())


def read_time_coverage() -> pd.DataFrame:
    return _read_cov(url(), data_version().view_key)


@st.cache_data(show_spinner=False, max_entries=16)
def _volume(db_url: str, key: tuple, model: str | None) -> tuple[float, int, float]:
    from dashboard.turnaround import annual_volume

    return annual_volume(case_frame(), model)


def annual_volume(model: str | None) -> tuple[float, int, float]:
    return _volume(url(), data_version().view_key, model)


@st.cache_data(show_spinner=False, max_entries=16)
def _measured_roi(db_url: str, key: tuple, model: str | None, gl: tuple) -> dict:
    from dashboard.turnaround import annual_volume, compare_medians

    frame = case_frame()
    per_year, studies, days = annual_volume(frame, model)
    df = frame if model is None else frame[frame["model"] == model]
    minutes, note = None, "no feed carries read times (OBR-32): an assumption is used"
    reads = compare_medians(df, dict(gl), "read_min")
    gol = reads[(reads["comparison"] == "go-live") & (reads["status"] == "ok")]
    if len(gol) and model is not None and set(gol["group"]) == {"before go-live", "after go-live"}:
        by = gol.set_index("group")["median_min"]
        minutes = float(by["before go-live"] - by["after go-live"])
        note = "median read time before go-live minus after (measured)"
    adj = df[
        (df["label_source"] == "adjudication") & (df["label"] == 1) & df["ai_call"].fillna(False)
    ]
    extra = len(adj) * 365.0 / days if days else 0.0
    return {
        "annual_volume": per_year,
        "studies": studies,
        "days": days,
        "minutes_saved": minutes,
        "minutes_note": note,
        "extra_detections": extra,
    }


def measured_roi_figures(model: str | None) -> dict:
    gl = tuple(sorted(go_live_dates().items()))
    return _measured_roi(url(), data_version().view_key, model, gl)


# --- performance (monitors.performance, cached per data version) ---------------------------


def _trend_frame(periods: list[dict], *, period: str, start: str, n_results: str) -> pd.DataFrame:
    """Stored per-period metric entries -> one TREND_COLUMNS row per period and metric.

    Monthly windows and weekly trends store the same entries under different key names."""
    rows = [
        {
            "period": p[period],
            "start": p.get(start),
            "metric": metric,
            "value": e.get("value"),
            "ci_low": e.get("ci_low"),
            "ci_high": e.get("ci_high"),
            "n": e.get("n"),
            "status": e.get("status"),
            "n_results": p.get(n_results),
        }
        for p in periods
        for metric, e in (p.get("metrics") or {}).items()
    ]
    return pd.DataFrame(rows, columns=TREND_COLUMNS)


@st.cache_data(show_spinner=False, max_entries=16)
def _stored_trend(db_url: str, run_id: int, model: str) -> pd.DataFrame | None:
    res = model_results(_run_results(db_url, run_id)).get(model) or {}
    if not res.get("windows"):
        return None
    return _trend_frame(res["windows"], period="window", start="from", n_results="n_cases")


@st.cache_data(show_spinner=False, max_entries=16)
def _stored_weekly_trend(db_url: str, run_id: int, model: str) -> pd.DataFrame | None:
    res = model_results(_run_results(db_url, run_id)).get(model) or {}
    weeks = (res.get("trends") or {}).get("week")
    if not weeks:
        return None
    return _trend_frame(weeks, period="period", start="start", n_results="n_results")


def stored_weekly_trend(model: str) -> pd.DataFrame | None:
    """The weekly trend the last `vigil monitor` run stored (``trends.week``, the same
    performance_trend rows per ISO week), without the case frame; None when absent."""
    run = data_version().monitor_run
    return _stored_weekly_trend(url(), run, model) if run else None


def stored_monthly_trend(model: str) -> pd.DataFrame | None:
    """The monthly trend the last `vigil monitor` run stored (its ``windows``: the same
    monitors.performance.performance_trend rows), without the case frame; None before a run
    or for a model the run did not cover."""
    run = data_version().monitor_run
    return _stored_trend(url(), run, model) if run else None


TREND_COLUMNS = [
    "period",
    "start",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "status",
    "n_results",
]
METRICS_SHOWN = ("sensitivity", "specificity", "ppv", "npv", "flag_rate", "fp_per_study", "auc")


def _est_cols(prefix: str, e: Any) -> dict[str, Any]:
    d = e.to_dict() if hasattr(e, "to_dict") else dict(e or {})
    return {
        f"{prefix}": d.get("value"),
        f"{prefix}_ci_low": d.get("ci_low"),
        f"{prefix}_ci_high": d.get("ci_high"),
        f"{prefix}_n": d.get("n"),
        f"{prefix}_status": d.get("status"),
    }


@st.cache_data(show_spinner=False, max_entries=32)
def _trend(db_url: str, key: tuple, model: str, freq: str) -> pd.DataFrame:
    from monitors.performance import performance_trend

    rows = []
    for p in performance_trend(case_frame(), model=model, freq=freq):
        for metric, e in p.metrics.items():
            d = e.to_dict()
            rows.append(
                {
                    "period": p.period,
                    "start": p.start,
                    "metric": metric,
                    "value": d["value"],
                    "ci_low": d["ci_low"],
                    "ci_high": d["ci_high"],
                    "n": d["n"],
                    "status": d["status"],
                    "n_results": p.n_results,
                }
            )
    return pd.DataFrame(rows, columns=TREND_COLUMNS)


def performance_trend(model: str, freq: str) -> pd.DataFrame:
    """One row per period and metric (value, 95% CI, n, status), oldest first."""
    return _trend(url(), data_version().view_key, model, freq)


def _baseline_for(model: str):
    from monitors.performance import Baseline

    card = next((m for m in models() if m["name"] == model), None)
    if card is None:
        return None
    return Baseline(
        sensitivity=card["baseline_sensitivity"],
        specificity=card["baseline_specificity"],
        auc=card["baseline_auc"],
        ppv=card["baseline_ppv"],
        n=card["baseline_n"],
    )


@st.cache_data(show_spinner=False, max_entries=16)
def _by_site(db_url: str, key: tuple, model: str) -> pd.DataFrame:
    from monitors.performance import performance_summary

    frame = case_frame()
    sub = frame[frame["model"] == model]
    rows = []
    for site, g in sub.groupby("site", observed=True):
        s = performance_summary(g, model=model)
        for metric in METRICS_SHOWN:
            e = s.metrics.get(metric)
            if e is None:
                continue
            d = e.to_dict()
            rows.append(
                {
                    "site": str(site),
                    "metric": metric,
                    "value": d["value"],
                    "ci_low": d["ci_low"],
                    "ci_high": d["ci_high"],
                    "n": d["n"],
                    "status": d["status"],
                }
            )
    return pd.DataFrame(
        rows, columns=["site", "metric", "value", "ci_low", "ci_high", "n", "status"]
    )


def performance_by_site(model: str) -> pd.DataFrame:
    return _by_site(url(), data_version().view_key, model)


THRESHOLD_GRID = tuple(round(i / 100, 2) for i in range(1, 100))


@st.cache_data(show_spinner=False, max_entries=16)
def _thresholds(db_url: str, key: tuple, model: str) -> pd.DataFrame:
    from monitors.performance import threshold_analysis

    rows = []
    for p in threshold_analysis(case_frame(), model=model, thresholds=THRESHOLD_GRID):
        row = {
            "threshold": p.threshold,
            "is_operating": p.is_operating,
            "tp": p.tp,
            "fp": p.fp,
            "tn": p.tn,
            "fn": p.fn,
        }
        for metric in ("sensitivity", "specificity", "ppv", "flag_rate", "fp_per_study"):
            row.update(_est_cols(metric, getattr(p, metric)))
        rows.append(row)
    return pd.DataFrame(rows)


def threshold_table(model: str) -> pd.DataFrame:
    """Threshold what-if for every threshold 0.01..0.99 (one pass, then a slider lookup)."""
    return _thresholds(url(), data_version().view_key, model)


# --- fairness (rows of the stored monitors.fairness scan) ----------------------------------


def fairness_rows(table: dict[str, Any], metric: str) -> pd.DataFrame:
    """One row per subgroup: n, value, CI, gap to the rest (CI), p, BH-adjusted p, alert."""
    out = []
    for r in table.get("rows") or []:
        if r.get("metric") != metric:
            continue
        e = r.get("estimate") or {}
        status = e.get("status", r.get("status"))
        out.append(
            {
                "group": r.get("group"),
                "n": e.get("n"),
                "value": e.get("value"),
                "ci_low": e.get("ci_low"),
                "ci_high": e.get("ci_high"),
                "gap": r.get("gap"),
                "gap_ci_low": r.get("gap_ci_low"),
                "gap_ci_high": r.get("gap_ci_high"),
                "p_value": r.get("p_value"),
                "p_adjusted": r.get("p_adjusted"),
                "significant": bool(r.get("alert")),
                "status": "insufficient data (n below minimum)"
                if status == "insufficient_data"
                else status,
                "reason": r.get("reason"),
            }
        )
    return pd.DataFrame(
        out,
        columns=[
            "group",
            "n",
            "value",
            "ci_low",
            "ci_high",
            "gap",
            "gap_ci_low",
            "gap_ci_high",
            "p_value",
            "p_adjusted",
            "significant",
            "status",
            "reason",
        ],
    )


# --- drift (the stored DriftBlock, plus distributions from the frame) ----------------------


def drift_findings(block: dict[str, Any]) -> pd.DataFrame:
    """One row per (scope, column) that drifted: since when, how much (latest window)."""
    from monitors.drift import drifted_findings

    rows = []
    for f in drifted_findings(block):
        latest = f.get("latest") or {}
        rows.append(
            {
                "scope": f["subgroup"] or "all sites",
                "column": f["column"],
                "since": min(f["windows"]),
                "windows drifted": len(f["windows"]),
                "latest window": latest.get("window"),
                "psi": latest.get("psi"),
                "psi threshold": latest.get("psi_threshold"),
                "distance": latest.get("distance"),
                "distance name": latest.get("distance_name"),
                "p value": latest.get("p_value"),
                "biggest change": "; ".join(
                    f"{c.get('value')}: {c.get('ref_share', 0):.0%}→{c.get('cur_share', 0):.0%}"
                    for c in (latest.get("top_changes") or [])[:2]
                ),
            }
        )
    return pd.DataFrame(rows)


def drift_windows(block: dict[str, Any]) -> list[str]:
    scopes = block.get("scopes") or []
    return [w["window"] for w in scopes[0]["windows"]] if scopes else []


def drift_scopes(block: dict[str, Any]) -> list[str]:
    return [s["subgroup"] for s in block.get("scopes") or []]


def drift_detail(block: dict[str, Any], scope: str, window: str, column: str) -> dict | None:
    for s in block.get("scopes") or []:
        if s["subgroup"] != scope:
            continue
        for w in s["windows"]:
            if w["window"] != window:
                continue
            for c in w["columns"]:
                if c["column"] == column:
                    return c
    return None


def evidently_report(model: str) -> Path | None:
    """The Evidently HTML report the last `vigil monitor --evidently DIR` saved for ``model``."""
    run = latest_run_meta() or {}
    for p in run.get("evidently_reports") or []:
        path = Path(p)
        if path.name.startswith(f"{model}-drift-") and path.is_file():
            return path
    return None


@st.cache_data(show_spinner=False, max_entries=64)
def _distribution(
    db_url: str,
    key: tuple,
    model: str,
    column: str,
    scope: str,
    reference: tuple[str, ...],
    window: str,
) -> pd.DataFrame:
    frame = case_frame()
    rows, all_months = _model_rows(db_url, key[:-1])[model]  # positions: the loaded frame
    df = frame.iloc[rows]
    months = all_months
    if scope.startswith("site="):
        keep = (df["site"].astype("string") == scope.removeprefix("site=")).fillna(False)
        df, months = df[keep.to_numpy()], months[keep.to_numpy()]
    ref = df.loc[months.isin(list(reference)).fillna(False).to_numpy(), column]
    cur = df.loc[(months == window).fillna(False).to_numpy(), column]
    if pd.api.types.is_numeric_dtype(df[column]) and not isinstance(
        df[column].dtype, pd.CategoricalDtype
    ):
        both = pd.concat([ref, cur]).dropna().astype("float64")
        if both.empty:
            return pd.DataFrame(columns=["bin", "ref_share", "cur_share"])
        edges = pd.Series(both).quantile([i / 10 for i in range(11)]).unique()
        if len(edges) < 2:
            edges = [both.min(), both.max() + 1e-9]
        rc = pd.cut(ref.astype("float64"), edges, include_lowest=True).value_counts(sort=False)
        cc = pd.cut(cur.astype("float64"), edges, include_lowest=True).value_counts(sort=False)
        bins = [f"{iv.left:.3g}–{iv.right:.3g}" for iv in rc.index]
    else:
        rc = ref.astype("string").fillna("missing").value_counts()
        cc = cur.astype("string").fillna("missing").value_counts()
        idx = rc.index.union(cc.index)
        rc, cc = rc.reindex(idx, fill_value=0), cc.reindex(idx, fill_value=0)
        bins = [str(i) for i in idx]
    return pd.DataFrame(
        {
            "bin": bins,
            "ref_share": (rc / max(rc.sum(), 1)).to_numpy(),
            "cur_share": (cc / max(cc.sum(), 1)).to_numpy(),
            "ref_n": rc.to_numpy(),
            "cur_n": cc.to_numpy(),
        }
    )


@st.cache_resource(show_spinner=False, max_entries=2)
def _model_rows(db_url: str, key: tuple) -> dict[str, tuple[Any, pd.Series]]:
    """Per model: its row positions in the frame and each row's month (computed once)."""
    import numpy as np

    from monitors.drift import month_windows

    frame = case_frame()
    out = {}
    for model in frame["model"].cat.categories:
        rows = np.flatnonzero((frame["model"] == model).to_numpy())
        months = month_windows(frame["exam_at"].iloc[rows]).reset_index(drop=True)
        out[str(model)] = (rows, months)
    return out


def distribution(
    model: str, column: str, scope: str, reference: tuple[str, ...], window: str
) -> pd.DataFrame:
    return _distribution(url(), data_version().view_key, model, column, scope, reference, window)


# --- discordance ---------------------------------------------------------------------------

DISCORDANT_COLUMNS = [
    "study_id",
    "accession",
    "site",
    "finding",
    "exam_at",
    "score",
    "ai_call",
    "radiologist",
    "label_source",
]


@st.cache_data(show_spinner=False, max_entries=32)
def _discordant(db_url: str, key: tuple, model: str, adjudicated: bool) -> pd.DataFrame:
    frame = case_frame()
    df = frame[(frame["model"] == model) & frame["label"].notna() & frame["ai_call"].notna()]
    disagree = df["ai_call"].astype(bool).to_numpy() != df["label"].astype(bool).to_numpy()
    adj = (df["label_source"].astype("string") == "adjudication").fillna(False).to_numpy()
    if adjudicated:
        df = frame[
            (frame["model"] == model)
            & (frame["label_source"].astype("string") == "adjudication").fillna(False)
        ]
    else:
        df = df[disagree & ~adj]
    out = df.assign(radiologist=df["label_state"].astype("string"))
    return out[DISCORDANT_COLUMNS].sort_values("exam_at", ascending=False).reset_index(drop=True)


def discordant_cases(model: str, *, adjudicated: bool) -> pd.DataFrame:
    """Labelled cases where the AI call and the reference label disagree (not yet adjudicated),
    or every adjudicated case of the model."""
    return _discordant(url(), data_version().view_key, model, adjudicated)


def discordant_export(model: str) -> pd.DataFrame:
    """Frame rows of every discordant or adjudicated case of ``model`` (for de-identification)."""
    frame = case_frame()
    df = frame[(frame["model"] == model) & frame["label"].notna() & frame["ai_call"].notna()]
    disagree = df["ai_call"].astype(bool).to_numpy() != df["label"].astype(bool).to_numpy()
    adj = (df["label_source"].astype("string") == "adjudication").fillna(False).to_numpy()
    return df[disagree | adj]


# --- warm-up ------------------------------------------------------------------------------

# Tests that swap databases between runs in one process turn this off (a thread still warming
# the previous test's store would read the next test's settings).
WARM_UP_IN_BACKGROUND = True


def warm_up() -> float:
    """Load the frame and compute every default aggregate once per process and data version,
    so that no person waits for them (the app starts this in a background thread)."""
    import time

    t0 = time.perf_counter()
    case_frame()
    v = data_version()
    _model_rows(url(), v.frame_key)
    for m in model_names():
        for freq in ("M", "W"):
            performance_trend(m, freq)
        performance_by_site(m)
        threshold_table(m)
        discordant_cases(m, adjudicated=False)
        discordant_cases(m, adjudicated=True)
        measured_roi_figures(m)
    measured_roi_figures(None)
    for m, res in model_results(latest_results()).items():  # the drift page's default view
        block = res.get("drift") or {}
        columns, windows, scopes = block.get("columns"), drift_windows(block), drift_scopes(block)
        if columns and windows and scopes:
            found = drift_findings(block)
            col = found["column"].iloc[0] if len(found) else columns[0]
            distribution(
                m, col, scopes[0], tuple(block.get("reference_windows") or []), windows[-1]
            )
    unpaired_if_ready()  # the same background job the ingest page reads
    turnaround_table("turnaround_min")
    turnaround_table("read_min")
    read_time_coverage()
    return time.perf_counter() - t0


@st.cache_data(show_spinner=False, max_entries=8)
def _export_csv(db_url: str, key: tuple, model: str) -> str:
    return deidentified_export(discordant_export(model)).to_csv(index=False)


def discordant_export_csv(model: str) -> str:
    """The de-identified CSV of discordant cases (built once per data version)."""
    return _export_csv(url(), data_version().view_key, model)


def performance_trend_empty() -> pd.DataFrame:
    """No periods yet (the case data is still loading)."""
    return pd.DataFrame(columns=TREND_COLUMNS)
