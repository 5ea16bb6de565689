"""ROI: the pure calculation against hand-computed examples, and the page against it."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import Engine
from test_dashboard_helpers import app_as, make_store, metrics, open_page

from dashboard.roi import RoiInputs, compute_roi, scenario_range, sensitivity, to_csv
from vigil.caseframe import load_case_frame


def test_on_premise_example_by_hand() -> None:
    # 20,000 studies x 1 min = 333.33 h x $250 = $83,333.33 saved; cost 30k + 20k = 50k;
    # net 33,333.33/year; payback 100k / 33,333.33 = 3.0 years; 5 years: 166,666.67 - 100k.
    r = compute_roi(
        RoiInputs(
            upfront_cost=100_000,
            annual_licence=30_000,
            annual_it_support=20_000,
            cloud_cost_per_study=0,
            radiologist_cost_per_hour=250,
            minutes_saved_per_study=1.0,
            annual_volume=20_000,
            horizon_years=5,
        )
    )
    assert r.annual_cost == pytest.approx(50_000)
    assert r.radiologist_hours_saved == pytest.approx(333.3333, rel=1e-6)
    assert r.annual_savings == pytest.approx(83_333.33, abs=0.01)
    assert r.annual_net == pytest.approx(33_333.33, abs=0.01)
    assert r.payback_years == pytest.approx(3.0)
    assert r.horizon_net == pytest.approx(66_666.67, abs=0.01)


def test_cloud_example_with_detections_by_hand() -> None:
    # inference 10,000 x $1.50 = 15,000; cost 15,000 + 10,000 IT = 25,000;
    # time 10,000 x 2 min = 333.33 h x $300 = 100,000; detections 4 x 5,000 = 20,000.
    r = compute_roi(
        RoiInputs(
            upfront_cost=0,
            annual_licence=0,
            annual_it_support=10_000,
            cloud_cost_per_study=1.5,
            radiologist_cost_per_hour=300,
            minutes_saved_per_study=2.0,
            annual_volume=10_000,
            extra_detections_per_year=4,
            value_per_detection=5_000,
        )
    )
    assert r.annual_inference_cost == pytest.approx(15_000)
    assert r.annual_cost == pytest.approx(25_000)
    assert r.annual_savings == pytest.approx(120_000)
    assert r.annual_net == pytest.approx(95_000)
    assert r.payback_years == 0.0


def test_never_pays_back_and_the_csv_says_so() -> None:
    i = RoiInputs(minutes_saved_per_study=0.1)  # 20,000 x 0.1 / 60 x 250 = 8,333 < 50,000
    r = compute_roi(i)
    assert r.annual_net == pytest.approx(8_333.33 - 50_000, abs=0.01)
    assert r.payback_years is None
    rows = list(csv.reader(io.StringIO(to_csv(i, r, sensitivity(i)))))
    assert ["result", "payback_years", "never", "years", ""] in rows
    assert rows[0] == ["section", "item", "value", "unit", "note"]


def test_sensitivity_rows_and_range_by_hand() -> None:
    i = RoiInputs()
    rows = {r.key: r for r in sensitivity(i)}
    # minutes saved 0..3: savings 0 or 250,000; net -50,000 or 200,000
    assert rows["minutes_saved_per_study"].net_at_low == pytest.approx(-50_000)
    assert rows["minutes_saved_per_study"].net_at_high == pytest.approx(200_000)
    # widest swing first
    assert next(iter(rows)) == "minutes_saved_per_study"
    pess, opt = scenario_range(i)
    assert pess.annual_net < compute_roi(i).annual_net < opt.annual_net
    # pessimistic: 15k studies, 0 min, $60k licence, $40k IT, $2 cloud -> cost 130,000
    assert pess.annual_cost == pytest.approx(60_000 + 40_000 + 2.0 * 15_000)
    assert pess.annual_net == pytest.approx(-130_000)


def test_roi_page_uses_measured_volume(engine: Engine) -> None:
    make_store(engine, monitor=False)
    at = open_page(app_as("administrator"), "business_case")
    frame = load_case_frame(engine)
    days = (frame["exam_at"].max() - frame["exam_at"].min()).total_seconds() / 86400
    volume = frame["study_id"].nunique() * 365 / days  # independent of dashboard.turnaround
    m = metrics(at)
    assert m["Studies per year (measured)"] == f"{volume:,.0f}"
    # defaults: 1 min at $250/h, 30k + 20k cost, no cloud
    assert m["Annual savings"] == f"${volume / 60 * 250:,.0f}"
    assert m["Annual cost"] == "$50,000"
    assert at.button and any(b.label.startswith("Save") for b in at.button)
    assert any(d for d in at.get("download_button"))


def test_roi_inputs_read_only_for_committee_members(engine: Engine) -> None:
    make_store(engine, monitor=False)
    at = open_page(app_as("coe_member"), "business_case")
    assert all(n.disabled for n in at.number_input)
    assert not any(b.label.startswith("Save") for b in at.button)
