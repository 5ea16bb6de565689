"""Build the case frame (monitors.frame's contract) from the store: one SQL query, no ORM rows.

Why raw SQL through the DBAPI cursor: a million studies must load in seconds, and building one
ORM object (or even one Python datetime) per row costs far more than the query. Timestamps leave
the database as epoch seconds (floats) and are converted in one vectorised step; strings become
pandas categories.

The reference label of a study x finding comes from its read: an adjudication (the quality
officer's decision) beats any report; otherwise the current final read (status F/C/A). A study
with only a preliminary read, or none, is ``pending``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from monitors.frame import AGE_BANDS, CASE_FRAME_COLUMNS, age_band, empty_case_frame
from vigil.errors import NotFoundError

DICOM_PREFIX = "dicom_"  # Study.extra keys become dicom_<key> columns (monitors.drift watches them)

_TIME_COLUMNS = {
    "ordered_at": "s.ordered_at",
    "exam_at": "COALESCE(s.exam_started_at, s.exam_ended_at)",
    "ai_received_at": "r.received_at",
    "prelim_report_at": "s.prelim_report_at",
    "final_report_at": "s.final_report_at",
    "read_started_at": "s.read_started_at",
    "read_ended_at": "s.read_ended_at",
}


def _epoch(expr: str, dialect: str) -> str:
    if dialect == "sqlite":
        # stored as naive UTC text; julianday parses it (fractions included)
        return f"((julianday({expr}) - 2440587.5) * 86400.0)"
    return f"CAST(EXTRACT(EPOCH FROM {expr}) AS DOUBLE PRECISION)"


def _dicom_keys(conn: Any, dialect: str) -> list[str]:
    """Keys of Study.extra (DICOM-derived inputs) seen in a sample of studies."""
    rows = conn.execute(
        text("SELECT extra FROM study WHERE extra IS NOT NULL LIMIT 500")
    ).fetchall()
    keys: set[str] = set()
    for (extra,) in rows:
        value = json.loads(extra) if isinstance(extra, str) else extra
        if isinstance(value, dict):
            keys.update(k for k, v in value.items() if isinstance(v, (int, float, str)))
    return sorted(k for k in keys if k.replace("_", "").isalnum())


def _json_field(key: str, dialect: str) -> str:
    if dialect == "sqlite":
        return f"json_extract(s.extra, '$.{key}')"
    return f"(s.extra::json ->> '{key}')"


def _query(dialect: str, dicom: list[str], where: list[str]) -> str:
    times = ",\n  ".join(
        f"{_epoch(expr, dialect)} AS {name}" for name, expr in _TIME_COLUMNS.items()
    )
    extra = "".join(f",\n  {_json_field(k, dialect)} AS {DICOM_PREFIX}{k}" for k in dicom)
    true = "1" if dialect == "sqlite" else "TRUE"
    # one read per study x finding: adjudication first, then the current read, then the latest
    return f"""
WITH ranked AS (
  SELECT f.study_id, f.finding, f.label, f.label_source, f.report_status,
         ROW_NUMBER() OVER (
           PARTITION BY f.study_id, f.finding
           ORDER BY CASE WHEN f.label_source = 'adjudication' THEN 0 ELSE 1 END,
                    CASE WHEN f.is_current = {true} THEN 0 ELSE 1 END,
                    f.reported_at DESC, f.id DESC) AS rn
  FROM finalread f
  WHERE f.is_current = {true} OR f.label_source = 'adjudication'
)
SELECT
  s.id AS study_id, s.site_code AS site, s.accession, s.modality,
  COALESCE(s.procedure_code, s.procedure_name) AS procedure,
  s.scanner_manufacturer, s.scanner_model, s.patient_class,
  s.age_at_study AS age, s.sex, s.race, s.ethnicity,
  m.name AS model, r.model_version, r.finding, r.score, r.call AS vendor_call,
  m.operating_threshold AS threshold,
  fr.label AS read_label, fr.label_source AS read_source, fr.report_status,
  {times}{extra}
FROM airesult r
JOIN study s ON s.id = r.study_id
JOIN aimodel m ON m.id = r.model_id
LEFT JOIN ranked fr ON fr.study_id = r.study_id AND fr.finding = r.finding AND fr.rn = 1
{"WHERE " + " AND ".join(where) if where else ""}
ORDER BY s.id, m.name, r.finding
"""


def _to_utc(seconds: pd.Series) -> pd.Series:
    x = pd.to_numeric(seconds, errors="coerce").astype("float64")
    # microsecond precision; julianday rounding is undone by rounding to the millisecond
    ns = (np.round(x.to_numpy() * 1000.0) * 1_000_000).astype("float64")
    out = pd.to_datetime(pd.Series(ns, index=x.index), unit="ns", utc=True)
    return out.astype("datetime64[ns, UTC]")


def _label_state(raw: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    label = raw["read_label"].astype("string").str.lower()
    source = raw["read_source"].astype("string").str.lower()
    status = raw["report_status"].astype("string").str.upper()
    final = label.notna() & ((status != "P") | (source == "adjudication")).fillna(True)
    state = pd.Series(
        np.where(final, label.fillna("pending"), "pending"), index=raw.index, dtype="string"
    )
    state = state.where(state.isin(["positive", "negative", "uncertain"]), "pending")
    num = pd.Series(pd.NA, index=raw.index, dtype="Int8")
    num[state == "positive"] = 1
    num[state == "negative"] = 0
    src = source.where(state != "pending")
    return num, state, src


def frame_from_rows(raw: pd.DataFrame) -> pd.DataFrame:
    """Turn the query's columns into the case frame contract (dtypes, labels, derived columns)."""
    if raw.empty:
        out = empty_case_frame()
        for c in raw.columns:
            if c.startswith(DICOM_PREFIX):
                out[c] = pd.Series(dtype="object")
        return out
    df = pd.DataFrame(index=raw.index)
    df["study_id"] = raw["study_id"].astype("int64")
    for c in ("site", "modality", "procedure", "scanner_manufacturer", "scanner_model"):
        df[c] = raw[c].astype("category")
    df["accession"] = raw["accession"].astype("string")
    df["patient_class"] = raw["patient_class"].astype("category")
    df["age"] = pd.to_numeric(raw["age"], errors="coerce").round().astype("Int64")
    df["age_band"] = age_band(df["age"])
    for c in ("sex", "race", "ethnicity", "model", "model_version", "finding"):
        df[c] = raw[c].astype("category")
    df["score"] = pd.to_numeric(raw["score"], errors="coerce").astype("float64")
    df["threshold"] = pd.to_numeric(raw["threshold"], errors="coerce").astype("float64")
    vendor = raw["vendor_call"].map(lambda v: None if v is None else bool(v)).astype("boolean")
    by_score = pd.array(df["score"] >= df["threshold"], dtype="boolean")
    df["ai_call"] = pd.Series(by_score, index=df.index).where(df["score"].notna(), vendor)
    df["ai_call"] = df["ai_call"].astype("boolean")
    df["label"], state, source = _label_state(raw)
    df["label_state"] = state.astype(
        pd.CategoricalDtype(["positive", "negative", "uncertain", "pending"])
    )
    df["label_source"] = source.astype("category")
    times = {name: _to_utc(raw[name]) for name in _TIME_COLUMNS}
    for name in ("ordered_at", "exam_at", "ai_received_at", "prelim_report_at", "final_report_at"):
        df[name] = times[name]
    first_report = pd.concat([times["prelim_report_at"], times["final_report_at"]], axis=1).min(
        axis=1
    )
    df["turnaround_min"] = (first_report - times["exam_at"]).dt.total_seconds() / 60.0
    df["read_min"] = (times["read_ended_at"] - times["read_started_at"]).dt.total_seconds() / 60.0
    for c in raw.columns:
        if c.startswith(DICOM_PREFIX):
            num = pd.to_numeric(raw[c], errors="coerce")
            df[c] = num if num.notna().sum() >= raw[c].notna().sum() else raw[c].astype("category")
    cols = list(CASE_FRAME_COLUMNS) + [c for c in df.columns if c.startswith(DICOM_PREFIX)]
    return df[cols].reset_index(drop=True)


def load_case_frame(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | None = None,
) -> pd.DataFrame:
    """The case frame of every AI result whose study's exam time lies in [since, until).

    ``model`` (AIModel.name) restricts to one model and raises NotFoundError when unknown.
    Studies without an exam time are kept unless a time bound is given.
    """
    dialect = engine.dialect.name
    where: list[str] = []
    params: dict[str, Any] = {}
    exam_epoch = _epoch("COALESCE(s.exam_started_at, s.exam_ended_at)", dialect)
    for name, bound, op in (("since", since, ">="), ("until", until, "<")):
        if bound is None:
            continue
        if bound.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware UTC")
        where.append(f"{exam_epoch} {op} :{name}")
        params[name] = bound.timestamp()
    with engine.connect() as conn:
        if model is not None:
            found = conn.execute(
                text("SELECT id FROM aimodel WHERE name = :n"), {"n": model}
            ).first()
            if found is None:
                names = [r[0] for r in conn.execute(text("SELECT name FROM aimodel ORDER BY name"))]
                raise NotFoundError(
                    f"no model named {model!r}; known models: {', '.join(names) or 'none'}"
                )
            where.append("r.model_id = :model_id")
            params["model_id"] = found[0]
        sql = _query(dialect, _dicom_keys(conn, dialect), where)
        # exec_driver_sql would need driver paramstyle; text() binds portably at negligible cost
        result = conn.execute(text(sql), params)
        columns = list(result.keys())
        rows = result.fetchall()
    raw = pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)
    return frame_from_rows(raw)


def read_case_frame(path: str | Path) -> pd.DataFrame:
    """Read a file written by ``vigil export cases`` back into the contract's dtypes."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        raw = pd.read_parquet(path)
    else:
        raw = pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""])
    out = pd.DataFrame(index=raw.index)
    for col, dtype in CASE_FRAME_COLUMNS.items():
        s = raw[col]
        if dtype.startswith("datetime64"):
            s = pd.to_datetime(s, utc=True, format="ISO8601").astype(dtype)
        elif dtype in ("float64", "int64", "Int64", "Int8"):
            s = pd.to_numeric(s).astype(dtype)
        elif dtype == "boolean":
            if not isinstance(s.dtype, pd.BooleanDtype):
                s = s.map({"True": True, "False": False}, na_action="ignore")
            s = s.astype("boolean")
        elif dtype == "category" and col == "label_state":
            s = s.astype(pd.CategoricalDtype(["positive", "negative", "uncertain", "pending"]))
        elif dtype == "category" and col == "age_band":
            s = s.astype(pd.CategoricalDtype([b[0] for b in AGE_BANDS], ordered=True))
        else:
            s = s.astype(dtype)
        out[col] = s
    for col in raw.columns:
        if col.startswith(DICOM_PREFIX):
            num = pd.to_numeric(raw[col], errors="coerce")
            out[col] = num if num.notna().sum() >= raw[col].notna().sum() else raw[col]
    return out
