"""The case-frame loader on SQLite and PostgreSQL, with hand-made store rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from monitors.frame import CASE_FRAME_COLUMNS, validate_case_frame
from vigil.caseframe import load_case_frame
from vigil.errors import NotFoundError
from vigil.store.db import session_scope
from vigil.store.tables import AIModel, AIResult, FinalRead, Site, Study

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _seed(engine) -> None:
    """Five studies, one model, each study a different labelling situation."""
    with session_scope(engine) as s:
        s.add(Site(code="NGH", name="North"))
        s.add(Site(code="EMC", name="East"))
        m = AIModel(name="neurovue-ich", finding="ich", operating_threshold=0.4)
        other = AIModel(name="lungsight-nodule", finding="lung_nodule", operating_threshold=0.5)
        s.add(m)
        s.add(other)
        s.flush()
        ages = [17, 18, 64, 80, None]
        for i in range(5):
            st = Study(
                site_code="NGH" if i < 3 else "EMC",
                accession=f"A{i}",
                modality="CT",
                procedure_code="CTHEAD",
                scanner_manufacturer="GE",
                scanner_model="Revolution",
                patient_class="E",
                age_at_study=ages[i],
                sex="F" if i % 2 else "M",
                exam_started_at=T0 + timedelta(days=i),
                prelim_report_at=T0 + timedelta(days=i, minutes=30),
                final_report_at=T0 + timedelta(days=i, minutes=90),
                read_started_at=T0 + timedelta(days=i, minutes=70) if i == 0 else None,
                read_ended_at=T0 + timedelta(days=i, minutes=82) if i == 0 else None,
                extra={"kvp": 120 + i, "slice_mm": 1.25} if i < 4 else None,
            )
            s.add(st)
            s.flush()
            s.add(
                AIResult(
                    study_id=st.id,
                    model_id=m.id,
                    finding="ich",
                    model_version="2.1",
                    score=[0.9, 0.1, 0.4, 0.39, None][i],
                    call=[True, False, True, False, True][i],
                    received_at=T0 + timedelta(days=i, minutes=5),
                )
            )
            reads = {
                # study 0: positive final report
                0: [("positive", "coded", "F", True)],
                # study 1: report said positive (old), corrected to negative (current)
                1: [("positive", "text", "F", False), ("negative", "text", "C", True)],
                # study 2: uncertain report
                2: [("uncertain", "text", "F", True)],
                # study 3: report negative, adjudication positive: adjudication wins
                3: [("negative", "text", "F", True), ("positive", "adjudication", "F", False)],
                # study 4: only a preliminary read: pending
                4: [("positive", "text", "P", True)],
            }[i]
            for j, (label, source, status, current) in enumerate(reads):
                s.add(
                    FinalRead(
                        study_id=st.id,
                        finding="ich",
                        label=label,
                        label_source=source,
                        report_status=status,
                        reported_at=T0 + timedelta(days=i, minutes=90 + j),
                        is_current=current,
                    )
                )
        # a study with a second model but no read at all: pending
        st = Study(site_code="EMC", accession="B1", modality="CT", exam_started_at=T0)
        s.add(st)
        s.flush()
        s.add(
            AIResult(
                study_id=st.id, model_id=other.id, finding="lung_nodule", score=0.7, received_at=T0
            )
        )


def test_labels_pending_uncertain_adjudication_and_age_bands(engine) -> None:
    _seed(engine)
    df = load_case_frame(engine)
    validate_case_frame(df)
    for col, dtype in CASE_FRAME_COLUMNS.items():
        assert str(df[col].dtype) == dtype, col
    assert len(df) == 6
    ich = df[df["model"] == "neurovue-ich"].set_index("accession")
    assert list(ich["label_state"].astype(str)) == [
        "positive",
        "negative",
        "uncertain",
        "positive",
        "pending",
    ]
    assert ich.loc["A0", "label"] == 1 and ich.loc["A1", "label"] == 0
    assert pd.isna(ich.loc["A2", "label"]) and pd.isna(ich.loc["A4", "label"])
    assert ich.loc["A3", "label_source"] == "adjudication"
    assert ich.loc["A1", "label_source"] == "text"
    assert pd.isna(ich.loc["A4", "label_source"])
    # AI call at the operating threshold 0.4 (the vendor's own call is ignored where a score is)
    assert list(ich["ai_call"].iloc[:4]) == [True, False, True, False]
    assert bool(ich.loc["A4", "ai_call"]) is True  # no score: the vendor's call
    assert list(ich["age_band"].astype(str).iloc[:4]) == ["0-17", "18-39", "40-64", "80+"]
    assert pd.isna(ich.loc["A4", "age_band"])
    assert ich.loc["A0", "turnaround_min"] == pytest.approx(30.0)
    assert ich.loc["A0", "read_min"] == pytest.approx(12.0)
    assert pd.isna(ich.loc["A1", "read_min"])
    assert ich.loc["A2", "exam_at"] == pd.Timestamp(T0 + timedelta(days=2))
    assert ich.loc["A0", "ai_received_at"] == pd.Timestamp(T0 + timedelta(minutes=5))
    assert list(ich["dicom_kvp"].iloc[:4]) == [120, 121, 122, 123]
    nod = df[df["model"] == "lungsight-nodule"].iloc[0]
    assert nod["label_state"] == "pending" and nod["threshold"] == 0.5


def test_filters_and_unknown_model(engine) -> None:
    _seed(engine)
    df = load_case_frame(
        engine, model="neurovue-ich", since=T0 + timedelta(days=1), until=T0 + timedelta(days=3)
    )
    assert sorted(df["accession"]) == ["A1", "A2"]
    with pytest.raises(NotFoundError, match="known models: lungsight-nodule, neurovue-ich"):
        load_case_frame(engine, model="nope")


def test_empty_store_gives_empty_contract_frame(engine) -> None:
    df = load_case_frame(engine)
    assert df.empty
    validate_case_frame(df)
