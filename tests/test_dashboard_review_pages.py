"""Alerts, discordance review and turnaround pages: numbers against independent computations
(the turnaround statistics themselves: tests/test_monitors_turnaround.py),
and the writes (acknowledge, resolve, adjudicate) reach the store with their audit entries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import Engine
from sqlmodel import select
from test_dashboard_helpers import app_as, make_store, metrics, open_page

from vigil.caseframe import load_case_frame
from vigil.store.db import session_scope
from vigil.store.tables import Alert, AuditLog, FinalRead, RescoreResult


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def test_alert_inbox_acknowledge_and_resolve(engine: Engine) -> None:
    make_store(engine, 600)
    with session_scope(engine) as s:
        alerts = s.exec(select(Alert)).all()
        n_open = sum(a.status == "open" for a in alerts)
    at = open_page(app_as("quality_officer", "quinn"), "alerts")
    assert metrics(at)["Open"] == str(n_open)
    assert len(at.dataframe[0].value) == n_open
    target = int(at.selectbox[0].value)
    at.text_area[0].input("looking into it")
    _button(at, "Acknowledge").click().run()
    assert not at.exception
    assert any("acknowledged" in s.value for s in at.success)
    with session_scope(engine) as s:
        a = s.get(Alert, target)
        assert (a.status, a.acknowledged_by, a.acknowledge_note) == (
            "acknowledged",
            "quinn",
            "looking into it",
        )
        audit = s.exec(
            select(AuditLog).where(AuditLog.target == f"alert:{target}", AuditLog.actor == "quinn")
        ).all()
        assert [x.action for x in audit] == ["alert.acknowledge"]
        assert audit[0].actor == "quinn"
    # a note, without a status change, kept in the history
    at.selectbox[0].select(target)
    at.text_area[0].input("called the vendor")
    _button(at, "Add note").click().run()
    with session_scope(engine) as s:
        assert s.get(Alert, target).status == "acknowledged"
    history = next(df.value for df in at.dataframe if "note" in df.value.columns)
    mine = history[(history["alert"] == target) & (history["by"] == "quinn")]
    assert list(mine["action"]) == ["note", "acknowledge"]
    assert list(mine["note"]) == ["called the vendor", "looking into it"]
    # a resolution without a note is refused, with a note it is stored
    at.selectbox[0].select(target)
    _button(at, "Resolve").click().run()
    assert any("needs a note" in e.value for e in at.error)
    at.selectbox[0].select(target)
    at.text_area[0].input("scanner protocol fixed at EMC")
    _button(at, "Resolve").click().run()
    with session_scope(engine) as s:
        a = s.get(Alert, target)
        assert (a.status, a.resolve_note) == ("resolved", "scanner protocol fixed at EMC")
    # filters: resolved only
    at.multiselect[0].set_value(["resolved"]).run()
    assert list(at.dataframe[0].value["id"]) == [target]


def test_discordance_adjudication_becomes_the_reference(engine: Engine, tmp_path) -> None:
    make_store(engine, 600, monitor=False)
    frame = load_case_frame(engine)
    model = "neurovue-ich"
    sub = frame[(frame["model"] == model) & frame["label"].notna()]
    disc = sub[sub["ai_call"].astype(bool) != sub["label"].astype(bool)]
    expected = len(disc)
    # a re-scoring result with a saliency map for the newest AI-positive discordant case
    newest = disc[disc["ai_call"].astype(bool)].sort_values("exam_at").iloc[-1]
    png = tmp_path / "saliency.png"
    from PIL import Image

    Image.new("RGB", (32, 32), (230, 159, 0)).save(png)
    with session_scope(engine) as s:
        s.add(
            RescoreResult(
                run_id="r1",
                study_id=int(newest["study_id"]),
                model_id=1,
                model_hash="abc",
                production_score=float(newest["score"]),
                rescore_score=0.42,
                difference=0.42 - float(newest["score"]),
                call_flip=True,
                saliency_path=str(png),
            )
        )
    at = open_page(app_as("quality_officer", "quinn"), "discordance")
    at.selectbox[0].select(model).run()
    assert metrics(at)["Discordant cases to review"] == str(expected)
    # pick an AI-positive, radiologist-negative case and rule "AI right"
    at.radio[0].set_value("AI positive only").run()
    study_id = int(at.selectbox[1].value)
    case = sub[sub["study_id"] == study_id].iloc[0]
    assert bool(case["ai_call"]) and case["label"] == 0
    assert study_id == int(newest["study_id"])  # newest first
    rescored = next(df.value for df in at.dataframe if "rescore_score" in df.value.columns)
    assert rescored["rescore_score"].tolist() == [0.42]
    images = at.get("imgs") or at.get("image")
    assert images and "Saliency map" in str(images[0].proto), "saliency map not shown"
    at.radio[2].set_value("ai_right")  # a form widget: the value goes with the submit
    _button(at, "Record adjudication").click().run()
    assert not at.exception
    with session_scope(engine) as s:
        reads = s.exec(select(FinalRead).where(FinalRead.study_id == study_id)).all()
        current = [r for r in reads if r.is_current]
        assert len(current) == 1 and len(reads) == 2
        assert (current[0].label, current[0].label_source) == ("positive", "adjudication")
        audit = s.exec(select(AuditLog).where(AuditLog.action == "case.adjudicate")).all()
        assert [(a.actor, a.target) for a in audit] == [("quinn", f"study:{study_id}:ich")]
        assert audit[0].detail["verdict"] == "ai_right"
    # the case frame now carries the adjudicated label, and the page moved the case
    after = load_case_frame(engine)
    row = after[after["study_id"] == study_id].iloc[0]
    assert (row["label"], row["label_source"]) == (1, "adjudication")
    assert metrics(at)["Discordant cases to review"] == str(expected - 1)
    assert metrics(at)["Adjudicated"] == "1"
    # a second case ruled indeterminate: the reference becomes "uncertain" (no 1/0 label)
    opts = at.selectbox[1].options
    other = int(opts[1].split()[1]) if len(opts) > 1 else None  # "study 427 · ..."
    if other is not None:
        at.selectbox[1].select(other).run()
        at.radio[2].set_value("indeterminate")
        _button(at, "Record adjudication").click().run()
        with session_scope(engine) as s:
            cur = s.exec(
                select(FinalRead).where(FinalRead.study_id == other, FinalRead.is_current)
            ).one()
            assert (cur.label, cur.label_source) == ("uncertain", "adjudication")
        expected -= 1  # an uncertain case leaves the accuracy (and the discordant) set
        assert metrics(at)["Discordant cases to review"] == str(expected - 1)
    # the dashboard overlays adjudications on the frame it loaded (no million-row reload):
    # its labels equal a fresh load from the store
    from dashboard import data

    cols = ["study_id", "finding", "label", "label_state", "label_source"]
    view = data.case_frame()[cols].astype("string").reset_index(drop=True)
    fresh = load_case_frame(engine)[cols].astype("string").reset_index(drop=True)
    pd.testing.assert_frame_equal(view, fresh)
    # the de-identified export is offered (its content is checked through the real download
    # button in test_dashboard_browser.py: AppTest only keeps the file's URL)
    assert [d for d in at.get("download_button") if "de-identified" in d.proto.label]


def test_turnaround_medians_against_scipy(engine: Engine) -> None:
    make_store(engine, 1500, monitor=False)
    frame = load_case_frame(engine)
    at = open_page(app_as("administrator"), "turnaround")
    at.selectbox[0].select("lungsight-nodule").run()
    table = at.dataframe[0].value
    sub = frame[(frame["model"] == "lungsight-nodule") & frame["turnaround_min"].notna()]
    go_live = pd.Timestamp("2026-02-01", tz="UTC")
    after = sub[sub["exam_at"] >= go_live]
    groups = {
        "before go-live": sub[sub["exam_at"] < go_live],
        "after go-live": after,
        "AI-flagged": after[after["ai_call"].astype(bool)],
        "not flagged": after[~after["ai_call"].astype(bool)],
    }
    for name, g in groups.items():
        row = table[table["group"] == name].iloc[0]
        x = g["turnaround_min"].to_numpy()
        assert row["n"] == len(x)
        assert row["median_min"] == pytest.approx(np.median(x))
        ci = stats.quantile_test(x, q=np.median(x), p=0.5).confidence_interval(0.95)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
    # simulated: flagged studies are read faster after go-live
    flagged = table[table["group"] == "AI-flagged"].iloc[0]
    other = table[table["group"] == "not flagged"].iloc[0]
    assert flagged["ci_high"] < other["ci_low"]
    # the difference of medians the page prints (monitors.turnaround), from numpy here
    diff = np.median(groups["AI-flagged"]["turnaround_min"]) - np.median(
        groups["not flagged"]["turnaround_min"]
    )
    shown = " ".join(m.value for m in at.markdown)
    assert f"AI-flagged − not flagged**: {diff:+.1f} min" in shown, shown
