"""The loader's fast path (ADBC: query results straight into Arrow) gives exactly the frame of a
straightforward reference (SQLAlchemy selects of each table + pandas), on SQLite and PostgreSQL,
and the same frame as the loader's other path.

The store is hand-made to hit what the fast path could get wrong: a column NULL in the first
1,200 rows (SQLite's type inference), DICOM extras mixing numbers and text, adjudications that
beat reports, preliminary-only reads, uncertain labels, vendor calls without a score.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select

from monitors.frame import AGE_BANDS, CASE_FRAME_COLUMNS
from vigil import caseframe
from vigil.caseframe import load_case_frame
from vigil.store.tables import AIModel, AIResult, FinalRead, Site, Study

T0 = datetime(2026, 1, 5, 7, 30, 15, 250000, tzinfo=UTC)
N = 1_300  # > the SQLite driver's 1,024-row default batch


def _seed(engine) -> None:
    rng = np.random.default_rng(11)
    studies, results, reads = [], [], []
    for i in range(1, N + 1):
        exam = T0 + timedelta(hours=7 * i, seconds=float(rng.integers(0, 3600)) + i / 1000)
        extra = None
        if i % 7:
            extra = {"kvp": int(rng.choice([100, 120])), "slice_mm": 1.25}
            extra["body_part"] = "HEAD" if i % 3 else "CHEST"
            extra["filter"] = 3 if i % 5 else "B30f"  # numbers and text in one key
            extra["order_control"] = "NW"  # bookkeeping, not an input
        studies.append(
            {
                "id": i,
                "site_code": ["NGH", "EMC"][i % 2],
                "accession": f"ACC{i:05d}",
                "modality": "CT",
                "procedure_code": None if i % 11 == 0 else f"P{i % 4}",
                "procedure_name": "CT head" if i % 11 == 0 else None,
                "scanner_manufacturer": ["GE", "Siemens", None][i % 3],
                "scanner_model": ["Revolution", "Force", None][i % 3],
                "patient_class": ["E", "I", "O"][i % 3],
                "age_at_study": None if i % 13 == 0 else int(rng.integers(0, 100)),
                "sex": ["F", "M", None][i % 3],
                "race": ["white", "black", "asian", None][i % 4],
                "ethnicity": None,
                "ordered_at": exam - timedelta(minutes=30),
                "exam_started_at": None if i % 17 == 0 else exam,
                "exam_ended_at": exam + timedelta(minutes=12),
                "prelim_report_at": exam + timedelta(minutes=20) if i % 2 else None,
                "final_report_at": None if i % 9 == 0 else exam + timedelta(minutes=95),
                # NULL for the first 1,200 rows, then set: SQLite's type inference
                "read_started_at": exam + timedelta(minutes=60) if i > 1_200 else None,
                "read_ended_at": exam + timedelta(minutes=71.5) if i > 1_200 else None,
                "extra": extra,
            }
        )
        for mid, finding in ((1, "ich"), (2, "pe")):
            if mid == 2 and i % 4:
                continue
            score = None if i % 19 == 0 else float(rng.random())
            results.append(
                {
                    "study_id": i,
                    "model_id": mid,
                    "finding": finding,
                    "model_version": "2.1" if i < N // 2 else "2.2",
                    "score": score,
                    "call": None if i % 23 == 0 else bool(i % 2),
                    "received_at": exam + timedelta(minutes=3),
                }
            )
            kind = i % 8
            when = exam + timedelta(minutes=95)

            def read(label, source, status, at, current, i=i, finding=finding):
                return {"study_id": i, "finding": finding, "evidence": "", "label": label,
                        "label_source": source, "report_status": status, "reported_at": at,
                        "is_current": current}  # fmt: skip

            if kind == 1:  # adjudication beats a current final report
                reads.append(read("positive", "coded", "F", when, True))
                reads.append(
                    read("negative", "adjudication", "F", when - timedelta(hours=1), False)
                )
            elif kind == 2:  # preliminary only: pending
                reads.append(read("positive", "text", "P", when, True))
            elif kind == 3:
                reads.append(read("uncertain", "text", "F", when, True))
            elif kind in (4, 5):  # an old superseded read, then the current addendum
                reads.append(read("positive", "coded", "F", when, False))
                reads.append(read("Negative", "Text", "a", when + timedelta(hours=2), True))
            elif kind == 6:
                reads.append(read("positive", "coded", "C", when, True))
    with engine.begin() as conn:
        conn.execute(insert(Site), [{"code": "NGH", "name": "N"}, {"code": "EMC", "name": "E"}])
        conn.execute(
            insert(AIModel),
            [
                {"id": 1, "name": "neurovue-ich", "finding": "ich", "operating_threshold": 0.4},
                {"id": 2, "name": "pe-watch", "finding": "pe", "operating_threshold": 0.55},
            ],
        )
        conn.execute(insert(Study), studies)
        conn.execute(insert(AIResult), results)
        conn.execute(insert(FinalRead), reads)


def _reference(engine, since=None, until=None, model=None) -> pd.DataFrame:
    """The case frame built the plain way: read each table, join and label in pandas."""
    with engine.connect() as conn:
        st = pd.DataFrame(conn.execute(select(Study)).mappings().all())
        ai = pd.DataFrame(conn.execute(select(AIResult)).mappings().all())
        md = pd.DataFrame(conn.execute(select(AIModel)).mappings().all())
        fr = pd.DataFrame(conn.execute(select(FinalRead)).mappings().all())
    df = ai.merge(st, left_on="study_id", right_on="id", suffixes=("", "_s"))
    df = df.merge(md[["id", "name", "operating_threshold"]], left_on="model_id", right_on="id",
                  suffixes=("", "_m"))  # fmt: skip
    fr = fr[fr["is_current"].astype(bool) | (fr["label_source"] == "adjudication")].copy()
    fr["prio"] = np.where(fr["label_source"] == "adjudication", 0, 1)
    fr["cur"] = np.where(fr["is_current"].astype(bool), 0, 1)
    fr = fr.sort_values(["study_id", "finding", "prio", "cur", "reported_at", "id"],
                        ascending=[True, True, True, True, False, False])  # fmt: skip
    fr = fr.drop_duplicates(["study_id", "finding"])
    df = df.merge(fr[["study_id", "finding", "label", "label_source", "report_status"]],
                  on=["study_id", "finding"], how="left")  # fmt: skip
    exam = df["exam_started_at"].where(df["exam_started_at"].notna(), df["exam_ended_at"])
    keep = pd.Series(True, index=df.index)
    if since is not None:
        keep &= exam >= since
    if until is not None:
        keep &= exam < until
    if model is not None:
        keep &= df["name"] == model
    df, exam = df[keep], exam[keep]

    utc = "datetime64[ns, UTC]"
    out = pd.DataFrame(index=df.index)
    out["study_id"] = df["study_id"]
    out["site"] = df["site_code"]
    out["accession"] = df["accession"]
    out["modality"] = df["modality"]
    out["procedure"] = df["procedure_code"].where(df["procedure_code"].notna(),
                                                  df["procedure_name"])  # fmt: skip
    for c in ("scanner_manufacturer", "scanner_model", "patient_class"):
        out[c] = df[c]
    out["age"] = df["age_at_study"].astype("Int64")
    edges = [b[1] for b in AGE_BANDS] + [AGE_BANDS[-1][2] + 1]
    out["age_band"] = pd.cut(out["age"].astype("float64"), edges, right=False,
                             labels=[b[0] for b in AGE_BANDS])  # fmt: skip
    for c in ("sex", "race", "ethnicity"):
        out[c] = df[c]
    out["model"] = df["name"]
    out["model_version"] = df["model_version"]
    out["finding"] = df["finding"]
    out["score"] = df["score"].astype("float64")
    out["threshold"] = df["operating_threshold"].astype("float64")
    calls = []
    for s, t, c in zip(out["score"], out["threshold"], df["call"], strict=True):
        calls.append(bool(s >= t) if s == s else (pd.NA if c is None or c != c else bool(c)))
    out["ai_call"] = pd.array(calls, dtype="boolean")
    states, sources = [], []
    for lab, src, status in zip(df["label"], df["label_source"], df["report_status"],
                                strict=True):  # fmt: skip
        state = "pending"
        if isinstance(lab, str) and (status.upper() != "P" or src.lower() == "adjudication"):
            state = lab.lower() if lab.lower() in ("positive", "negative", "uncertain") else state
        states.append(state)
        sources.append(src.lower() if state != "pending" else None)
    out["label"] = pd.array([{"positive": 1, "negative": 0}.get(s) for s in states], dtype="Int8")
    order = ["positive", "negative", "uncertain", "pending"]
    out["label_state"] = pd.Categorical(states, categories=order)
    out["label_source"] = sources
    for name, col in (("ordered_at", df["ordered_at"]), ("exam_at", exam),
                      ("ai_received_at", df["received_at"]),
                      ("prelim_report_at", df["prelim_report_at"]),
                      ("final_report_at", df["final_report_at"])):  # fmt: skip
        out[name] = pd.to_datetime(col, utc=True).astype(utc)
    first = out[["prelim_report_at", "final_report_at"]].min(axis=1)
    out["turnaround_min"] = (first - out["exam_at"]).dt.total_seconds() / 60.0
    rs = pd.to_datetime(df["read_started_at"], utc=True)
    re_ = pd.to_datetime(df["read_ended_at"], utc=True)
    out["read_min"] = (re_ - rs).dt.total_seconds() / 60.0
    for c, dtype in CASE_FRAME_COLUMNS.items():
        if c not in ("label_state", "age_band"):
            out[c] = out[c].astype(dtype)
    extras = df["extra"].map(lambda e: (json.loads(e) if isinstance(e, str) else e) or {})
    for key in ("body_part", "filter", "kvp", "slice_mm"):
        vals = extras.map(lambda e, k=key: e.get(k))
        num = pd.to_numeric(vals, errors="coerce")
        out[f"dicom_{key}"] = num if num.notna().sum() >= vals.notna().sum() else vals
    return out.sort_values("study_id", kind="stable").reset_index(drop=True)


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    for c in want.columns:
        g, w = got[c], want[c]
        if c.startswith("dicom_") and not pd.api.types.is_numeric_dtype(w):
            assert g.astype("string").tolist() == w.astype("string").tolist(), c
            continue
        if isinstance(w.dtype, pd.CategoricalDtype):
            assert g.astype("string").tolist() == w.astype("string").tolist(), c
            if c in ("label_state", "age_band"):
                assert list(g.cat.categories) == list(w.cat.categories), c
            continue
        assert str(g.dtype) == str(w.dtype), (c, g.dtype, w.dtype)
        pd.testing.assert_series_equal(g, w, check_names=False, rtol=1e-9)


@pytest.mark.parametrize(
    "bounds",
    [
        {},
        {"since": T0 + timedelta(days=60), "until": T0 + timedelta(days=300)},
        {"model": "pe-watch"},
    ],
)
def test_fast_path_matches_reference_and_other_path(engine, monkeypatch, bounds):
    _seed(engine)
    assert caseframe._adbc_uri(engine) is not None  # the fast path is what runs here
    got = load_case_frame(engine, **bounds)
    want = _reference(engine, **bounds)
    assert len(got) == len(want) > 100
    _same(got, want)
    # the adjudication case really is in the frame, and the inferred-late column is filled
    if not bounds:
        assert (got["label_source"] == "adjudication").any()
        assert got["read_min"].notna().any() and got["read_min"].isna().any()
    monkeypatch.setattr(caseframe, "USE_ADBC", False)
    other = load_case_frame(engine, **bounds)
    # the other PostgreSQL path ships epoch seconds as floats (sub-millisecond noise)
    for c, dtype in CASE_FRAME_COLUMNS.items():
        if dtype.startswith("datetime64"):
            gap = (got[c] - other[c]).abs().max()
            assert pd.isna(gap) or gap < pd.Timedelta(milliseconds=1), c
            other[c] = got[c]
        elif c in ("turnaround_min", "read_min"):
            np.testing.assert_allclose(got[c], other[c], atol=1e-4)
            other[c] = got[c]
    pd.testing.assert_frame_equal(got, other)


def test_fast_path_empty_store(engine):
    got = load_case_frame(engine)
    assert got.empty and list(got.columns)[: len(CASE_FRAME_COLUMNS)] == list(CASE_FRAME_COLUMNS)


def test_fast_path_sees_writes_of_this_process(engine):
    """SQLite's WAL store written through this process's pooled connections: the fast path's
    reader (the driver's own SQLite copy, run in a child process) sees the latest commit. In
    this process it read the superseded report instead of a new adjudication."""
    _seed(engine)
    first = load_case_frame(engine)
    sid = int(first.loc[first["label_state"] == "negative", "study_id"].iloc[0])
    when = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            FinalRead.__table__.update()
            .where(FinalRead.study_id == sid, FinalRead.finding == "ich")
            .values(is_current=False)
        )
        conn.execute(
            insert(FinalRead),
            [{"study_id": sid, "finding": "ich", "label": "positive", "evidence": "",
              "label_source": "adjudication", "report_status": "F", "reported_at": when,
              "is_current": True}],
        )  # fmt: skip
    after = load_case_frame(engine)
    row = after[(after["study_id"] == sid) & (after["finding"] == "ich")].iloc[0]
    assert (row["label"], row["label_source"]) == (1, "adjudication")
    assert len(after) == len(first)
