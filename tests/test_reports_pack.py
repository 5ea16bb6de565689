"""The committee pack end to end: simulate -> ingest -> models -> monitor -> alerts handled ->
`vigil report`, on SQLite and PostgreSQL. The PDF's text (pdftotext) must carry the same KPIs,
alert counts, fairness gaps and turnaround/read-time medians as the monitors give for the window
when the test calls them itself (KPIs also against statsmodels' Wilson interval on counts made
here with pandas, medians against numpy and scipy), and control charts equal to `vigil monitor`'s.
Page images go to test-artifacts/reports/ for people to look at.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import select
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from vigil import __version__
from vigil.store.db import session_scope
from vigil.store.tables import AIModel, Alert, ChecklistEvent, ChecklistItem, RescoreResult

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts" / "reports"
DASH = "–"  # the pack writes CIs as low–high with an en dash


def _months_before(d: date, months: int) -> date:
    i = d.year * 12 + d.month - 1 - months
    return date(i // 12, i % 12 + 1, 1)


def _pdftotext(pdf: Path) -> str:
    out = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    )
    return out.stdout


def _pdfinfo(pdf: Path) -> str:
    return subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout


def _build_network(engine, settings, sim_dir: Path, period_start: date) -> None:
    """The real pipeline: simulator feeds -> ingest -> model cards -> monitor run."""
    from connectors.ingest import ingest_files, iter_files
    from models.registry import add_cards
    from vigil.monitoring import run_monitors
    from vigil.simulate import SimulationConfig, simulate

    simulate(
        SimulationConfig(
            studies=1500, months=4, seed=11, out=sim_dir, start=_months_before(period_start, 3)
        )
    )
    ingest_files(iter_files([sim_dir / "feeds"]), settings, engine, workers=0)
    add_cards(engine, sorted((sim_dir / "models").glob("*.toml")), actor="test")
    run_monitors(engine)


def _handle_alerts_and_checklist(engine) -> None:
    """A quality officer acknowledges one alert and resolves another, with notes; the
    checklist gets items and a change; a few cases are re-scored."""
    from vigil.alerts import acknowledge, resolve

    with session_scope(engine) as s:
        ids = [a.id for a in s.exec(select(Alert).order_by(Alert.id)).all()]
    assert len(ids) >= 2, "the simulated network should raise at least two alerts"
    with session_scope(engine) as s:
        acknowledge(s, alert_id=ids[0], by="qo.ann", note="vendor asked for a root cause")
    with session_scope(engine) as s:
        resolve(s, alert_id=ids[1], by="qo.ann", note="scanner protocol fixed at site")
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        model = s.exec(select(AIModel).order_by(AIModel.name)).first()
        item = ChecklistItem(
            model_id=model.id,
            item_key="dpia",
            title="Data protection impact assessment",
            status="done",
            owner="dpo",
            updated_at=now,
        )
        s.add(item)
        s.add(
            ChecklistItem(
                model_id=None,
                item_key="governance",
                title="Governance charter",
                status="in_progress",
                owner="chair",
                updated_at=now,
            )
        )
        s.flush()
        s.add(
            ChecklistEvent(
                item_id=item.id, at=now, by="dpo", status="done", note="signed by the DPO"
            )
        )


def _add_rescores(engine, frame: pd.DataFrame) -> pd.DataFrame:
    """Re-score 40 of the window's cases of the first model (two calls flip)."""
    rows = frame[frame["score"].notna()].head(40)
    out = []
    with session_scope(engine) as s:
        mid = {m.name: m.id for m in s.exec(select(AIModel)).all()}
        for i, r in enumerate(rows.itertuples()):
            new = float(r.score) + (0.6 if i < 2 else 0.001) * (1 if r.score < 0.5 else -1)
            new = min(1.0, max(0.0, new))
            s.add(
                RescoreResult(
                    run_id="t1",
                    study_id=int(r.study_id),
                    model_id=mid[r.model],
                    model_hash="h",
                    production_score=float(r.score),
                    rescore_score=new,
                    difference=new - float(r.score),
                    call_flip=(new >= r.threshold) != (r.score >= r.threshold),
                )
            )
            out.append({"production_score": float(r.score), "rescore_score": new})
    return pd.DataFrame(out)


def _section(text: str, model: str, models: list[str]) -> str:
    """The text of one model's section (from its heading to the next section's)."""
    start = re.search(rf"^\s*{re.escape(model)} — ", text, re.M)
    assert start, f"no section heading for {model}"
    ends = [
        m.start()
        for other in models
        if other != model
        for m in re.finditer(rf"^\s*{re.escape(other)} — ", text, re.M)
        if m.start() > start.start()
    ]
    prog = re.search(r"^\s*Programme\s*$", text[start.start() :], re.M)
    if prog:
        ends.append(start.start() + prog.start())
    return text[start.start() : min(ends) if ends else len(text)]


def _wilson(k: int, n: int) -> tuple[float, float]:
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return float(lo), float(hi)


@pytest.mark.slow
def test_pack_numbers_equal_the_monitors(engine, settings, tmp_path, request):
    from monitors.fairness import fairness_scan
    from monitors.performance import performance_summary
    from vigil.cli.app import app
    from vigil.monitoring import MonitorConfig

    now = datetime.now(UTC)
    period_start = date(now.year, now.month, 1)
    period = f"{now.year:04d}-{now.month:02d}"
    w_start = datetime(now.year, now.month, 1, tzinfo=UTC)
    w_end = datetime.combine(_months_before(period_start, -1), datetime.min.time(), tzinfo=UTC)
    _build_network(engine, settings, tmp_path / "sim", period_start)
    _handle_alerts_and_checklist(engine)
    # the cases behind the pack, written by the export command the pack names
    since, until = f"{w_start:%Y-%m-%d}", f"{w_end:%Y-%m-%d}"
    export = ["export", "cases", "--since", since, "--until", until]
    res = CliRunner().invoke(app, [*export, "--out", str(tmp_path / "cases.parquet")])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(tmp_path / "cases.parquet")
    assert len(frame) > 100
    _add_rescores(engine, frame)

    out = tmp_path / "pack"
    res = CliRunner().invoke(app, ["report", "--period", period, "--out", str(out)])
    assert res.exit_code == 0, res.output
    pdf, html = out / "pack.pdf", out / "pack.html"
    text = _pdftotext(pdf)

    # artefacts for people: page images at 50 dpi
    art = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shutil.rmtree(art, ignore_errors=True)
    art.mkdir(parents=True)
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(art / "page")], check=True)
    shutil.copy(html, art / "pack.html")
    shutil.copy(pdf, art / "pack.pdf")
    assert len(list(art.glob("page-*.png"))) == int(
        re.search(r"Pages:\s+(\d+)", _pdfinfo(pdf)).group(1)
    )

    # traceability: version, window, the export command for the same cases
    flat = " ".join(text.split())
    assert f"Vigil version {__version__}" in flat
    assert f"vigil {' '.join(export)} --out cases-{period}.csv" in flat
    assert f"Cases in window {len(frame)}" in flat

    models = sorted(frame["model"].dropna().astype(str).unique())
    with session_scope(engine) as s:
        cards = {m.name: m for m in s.exec(select(AIModel)).all()}
        alerts = s.exec(select(Alert)).all()
    q = MonitorConfig().fairness_q
    checked_fair = 0
    for name in models:
        sec = _section(text, name, models)
        sec_flat = " ".join(sec.split())
        mf = frame[frame["model"] == name]

        # KPIs: sensitivity/specificity from pandas counts + statsmodels Wilson ...
        lab = mf[mf["label"].notna()]
        y = lab["label"].astype(int).to_numpy().astype(bool)
        call = lab["ai_call"].astype(bool).to_numpy()
        for metric, k, n in (
            ("Sensitivity", int((call & y).sum()), int(y.sum())),
            ("Specificity", int((~call & ~y).sum()), int((~y).sum())),
        ):
            if n >= 30:
                lo, hi = _wilson(k, n)
                row = f"{metric} {k / n:.3f} {lo:.3f}{DASH}{hi:.3f} {n}"
                assert row in sec_flat, f"{name}: {row!r} not in the pack"
            else:
                assert re.search(rf"{metric} insufficient data {n}\b", sec_flat), (name, metric)
        # ... and every KPI as the performance monitor gives it for the window
        perf = performance_summary(mf, model=name)
        labels = {"ppv": "PPV", "npv": "NPV", "auc": "AUC", "flag_rate": "Flag rate"}
        for key, label in labels.items():
            e = perf.metrics[key]
            if e.value is not None:
                want = f"{label} {e.value:.3f} {e.ci_low:.3f}{DASH}{e.ci_high:.3f} {e.n}"
                assert want in sec_flat, f"{name}: {want!r} not in the pack"

        # alert counts: from the store, counted here
        mid = cards[name].id

        def in_window(t):
            return t is not None and w_start <= t < w_end

        mine = [a for a in alerts if a.model_id == mid]
        opened = sum(in_window(a.first_seen) for a in mine)
        acked = sum(in_window(a.acknowledged_at) for a in mine)
        resolved = sum(in_window(a.resolved_at) for a in mine)
        counts = f"Opened: {opened} · acknowledged: {acked} · resolved: {resolved}"
        assert counts in sec_flat, f"{name}: {counts!r} not in the pack"
        for a in mine:
            for note in (a.acknowledge_note, a.resolve_note):
                if note:
                    assert note in sec_flat

        # fairness: every sensitivity/specificity gap of the scan, on its table row
        scan = fairness_scan(mf, model=name, q=q)
        lines = sec.splitlines()
        for table in scan.tables:
            for r in table.rows:
                if r.metric not in ("sensitivity", "specificity") or r.gap is None:
                    continue
                gap = f"{r.gap:+.3f}"
                hit = [
                    ln
                    for ln in lines
                    if r.attribute in ln
                    and f" {_first_word(r.group)} " in f" {ln} "
                    and r.metric in ln
                    and gap in ln
                    and f" {r.estimate.n} " in f" {ln} "
                ]
                assert hit, f"{name}: fairness row {r.attribute}={r.group} {r.metric} {gap}"
                sig = "YES" if r.p_adjusted is not None and r.p_adjusted <= q else "no"
                assert any(ln.rstrip().endswith(sig) for ln in hit)
                checked_fair += 1
    assert checked_fair > 0

    _check_times(engine, text, models, cards, frame, w_start, w_end)
    _check_charts_match_runner(engine, period)

    # the HTML is self-contained: nothing fetched from anywhere
    doc = html.read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!data:|#)""", doc, re.I)
    assert not re.search(r"""url\(\s*["']?(?!data:|#)""", doc, re.I)
    assert not re.search(r"@import|<script|<link", doc, re.I)
    assert not re.search(r"https?://(?!www\.w3\.org/)", doc)  # XML namespace names only

    # fonts embedded; A4 here, Letter on request
    fonts = subprocess.run(
        ["pdffonts", str(pdf)], check=True, capture_output=True, text=True
    ).stdout.splitlines()[2:]
    assert fonts and all(" yes " in f"{ln} " for ln in fonts), fonts
    assert "(A4)" in _pdfinfo(pdf)
    res = CliRunner().invoke(
        app,
        [
            "report",
            "--period",
            period,
            "--out",
            str(tmp_path / "us"),
            "--paper",
            "letter",
            "--model",
            models[0],
        ],
    )
    assert res.exit_code == 0, res.output
    info = _pdfinfo(tmp_path / "us" / "pack.pdf")
    assert re.search(r"Page size:\s+612 x 792 pts", info), info
    us_text = " ".join(_pdftotext(tmp_path / "us" / "pack.pdf").split())
    assert f"--model {models[0]}" in us_text
    for other in models[1:]:
        assert f"{other} — " not in us_text


def _times_lines(text: str) -> list[str]:
    """Lines of the pack's turnaround and read-time table (up to the ROI heading)."""
    start = text.index("Turnaround and read time")
    end = text.index("Return on investment", start)
    return text[start:end].splitlines()


def _has_row(lines: list[str], *cells: str) -> bool:
    return any(all(f" {c} " in f" {ln} " for c in cells) for ln in lines)


def _check_times(engine, text, models, cards, frame, w_start, w_end) -> None:
    """Per model, the table shows monitors.turnaround's medians, CIs, n and differences for
    the window; the after-go-live medians also against numpy/scipy on the exported cases."""
    import numpy as np
    from scipy import stats

    from monitors.turnaround import model_times
    from reports.content import BEFORE_GO_LIVE_DAYS
    from vigil.caseframe import load_case_frame

    full = load_case_frame(engine)  # everything, the days before go-live included
    lines = _times_lines(text)
    seen_measured = 0
    for name in models:
        gl = cards[name].go_live_date
        assert gl is not None
        for measure, word in (("turnaround_min", "turnaround"), ("read_min", "read time")):
            r = model_times(
                full, name, gl, measure, since=w_start, until=w_end, before_days=BEFORE_GO_LIVE_DAYS
            )
            if measure == "read_min" and r.n_measured == 0:
                head = name.split("-")[0] + ("-" if "-" in name else "")  # the cell wraps
                assert _has_row(lines, head, "read time", "not fed"), name
                continue
            for d in (r.go_live_change, r.flag_effect):
                for m in (d.a, d.b):
                    if m.status == "ok":
                        cells = (
                            f"{m.median:.1f}",
                            f"{m.ci_low:.1f}{DASH}{m.ci_high:.1f}",
                            str(m.n),
                        )
                        seen_measured += 1
                    else:
                        cells = (str(m.n),)
                    assert _has_row(lines, word, *cells), f"{name} {word} {m.group}: {cells}"
                if d.status == "ok":
                    k = 2 if max(abs(d.ci_low), abs(d.ci_high)) < 1 else 1  # the pack's rule
                    diff = (f"{d.difference:+.{k}f}", f"{d.ci_low:+.{k}f} to {d.ci_high:+.{k}f}")
                    assert _has_row(lines, *diff), f"{name} {word} difference {diff}"
            # independent: after go-live in the exported window, numpy median + scipy's CI
            mf = frame[(frame["model"] == name) & frame[measure].notna()]
            after = mf[mf["exam_at"] >= pd.Timestamp(gl, tz="UTC")][measure].to_numpy()
            assert r.go_live_change.b.n == len(after)
            if len(after) >= 10:
                ci = stats.quantile_test(after, q=np.median(after), p=0.5).confidence_interval()
                got = r.go_live_change.b
                assert (got.median, got.ci_low, got.ci_high) == pytest.approx(
                    (np.median(after), ci.low, ci.high)
                )
    assert seen_measured >= 4
    flat = " ".join(" ".join(lines).split())
    assert "ASSUMED" in flat and "MEASURED" in flat
    assert _has_row(lines, "all models", "read-time", "ASSUMED")  # "saving" wraps below


def _check_charts_match_runner(engine, period: str) -> None:
    """The pack's control charts are the runner's (`vigil monitor`): same target, and the same
    points and alarms for every month both cover up to the pack's period."""
    from reports.gather import gather
    from reports.monitor_results import model_results
    from reports.window import parse_period
    from vigil.monitoring import latest_run, run_monitors

    run_monitors(engine)  # after the alert handling above: the run the committee would see
    runner = latest_run(engine)["models"]
    pack = model_results(gather(engine, parse_period(period)))
    assert pack
    for name, res in pack.items():
        theirs = {c["metric"]: c for c in runner[name]["control_chart"]}
        mine = {c["metric"]: c for c in res["control_chart"]}
        assert mine.keys() == theirs.keys() and mine, name
        for metric, c in mine.items():
            t = theirs[metric]
            assert c["target"] == pytest.approx(t["target"]), (name, metric)
            assert c["target_source"] == t["target_source"]
            assert c["parameters"] == t["parameters"]
            tp = {p["period"]: p for p in t["points"]}
            assert c["points"] and all(p["period"] in tp for p in c["points"])
            for p in c["points"]:
                q = tp[p["period"]]
                assert (p["n"], p["successes"], p["alarm"]) == (q["n"], q["successes"], q["alarm"])
                assert p["statistic"] == pytest.approx(q["statistic"])


def _first_word(group: str) -> str:
    """A long group name ("GE MEDICAL SYSTEMS") wraps in its cell: its first word stays on the
    row's line with the numbers."""
    return group.split()[0] if group.split() else group
