"""The simulator's stated truth against what its own feeds show.

Scores and calls are read back from the AI vendors' HL7 files with a small parser written here
(not the simulator's code), joined to truth.parquet, and compared with the manifest's stated
per-subgroup values using Wilson intervals from statsmodels (Bonferroni over all checks), the
closed-form binormal values computed here with scipy, and scikit-learn's AUC.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import mannwhitneyu, norm
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from vigil.simulate import SimulationConfig, simulate, truth_frame

STUDIES = 30_000


def read_messages(folder: Path) -> list[list[list[str]]]:
    """Every message under ``folder`` as segments split into fields (independent parser)."""
    messages: list[list[list[str]]] = []
    for path in sorted(folder.glob("*.hl7")):
        text = path.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff")
        text = text.replace("\r\n", "\r").replace("\n", "\r")
        current: list[list[str]] | None = None
        for seg in text.split("\r"):
            if not seg or seg[:3] in ("FHS", "BHS", "BTS", "FTS"):
                continue
            if seg.startswith("MSH|"):
                current = [["MSH", *seg.split("|")[1:]]]
                messages.append(current)
            elif current is not None:
                current.append(seg.split("|"))
    return messages


def field(msg: list[list[str]], seg: str, n: int) -> str:
    """First ``seg``'s field n (MSH counted so that MSH-3 is the sending application)."""
    for s in msg:
        if s[0] == seg:
            k = n - 1 if seg == "MSH" else n
            return s[k] if k < len(s) else ""
    return ""


def hl7_time(ts: str) -> datetime | None:
    """HL7 TS (with optional fraction and offset) to aware UTC."""
    if not ts:
        return None
    sign = max(ts.find("+"), ts.find("-"))
    zone = ts[sign:] if sign > 0 else ""
    core = (ts[:sign] if sign > 0 else ts).split(".")[0]
    dt = datetime.strptime(core, "%Y%m%d%H%M%S")
    if zone:
        off = (int(zone[1:3]) * 60 + int(zone[3:5])) * (1 if zone[0] == "+" else -1)
        return (dt - pd.Timedelta(minutes=off)).replace(tzinfo=UTC)
    return dt.replace(tzinfo=UTC)


def ai_results(out: Path) -> pd.DataFrame:
    """One row per AI message: site, accession, model, score, call, version, scanner."""
    rows = []
    for m in read_messages(out / "feeds" / "NEUROVUE"):
        obx = {s[3].split("^")[0]: s for s in m if s[0] == "OBX"}
        rows.append(
            {
                "site": field(m, "MSH", 4),
                "accession": field(m, "OBR", 3),
                "ai_model": "neurovue-ich",
                "score": float(obx["ICH_SCORE"][5]),
                "call": obx["ICH_FLAG"][5] == "POSITIVE",
                "version": obx["ICH_SCORE"][18].split("^")[1],
                "ai_manufacturer": obx["00080070"][5],
                "ai_scanner_model": obx["00081090"][5],
                "sent": hl7_time(field(m, "MSH", 7)),
            }
        )
    for m in read_messages(out / "feeds" / "LUNGSIGHT"):
        obx = next(s for s in m if s[0] == "OBX")
        zsc = next(s for s in m if s[0] == "ZSC")
        rows.append(
            {
                "site": field(m, "MSH", 4),
                "accession": field(m, "ORC", 3),
                "ai_model": "lungsight-nodule",
                "score": float(obx[9]),
                "call": obx[5].startswith("DETECTED"),
                "version": field(m, "SFT", 2),
                "ai_manufacturer": zsc[1],
                "ai_scanner_model": zsc[2],
                "sent": hl7_time(field(m, "MSH", 7)),
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def stable_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("stable")
    simulate(
        SimulationConfig(
            studies=20_000, months=12, seed=11, stable=True, mess=0.0, out=out, workers=2
        )
    )
    manifest = json.loads((out / "manifest.json").read_text())
    truth = truth_frame(out)
    joined = ai_results(out).merge(truth, on=["site", "accession"], how="inner", validate="1:1")
    return out, manifest, truth, joined


@pytest.fixture(scope="module")
def event_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("events")
    simulate(SimulationConfig(studies=STUDIES, months=12, seed=12, mess=0.0, out=out, workers=2))
    manifest = json.loads((out / "manifest.json").read_text())
    truth = truth_frame(out)
    joined = ai_results(out).merge(truth, on=["site", "accession"], how="inner", validate="1:1")
    return out, manifest, truth, joined


def test_every_ai_study_has_exactly_one_ai_message(stable_run) -> None:
    _, _, truth, joined = stable_run
    assert len(joined) == truth["model"].notna().sum()
    # the call the vendor sends agrees with its score and the stated threshold
    thr = joined["model"].map({"neurovue-ich": 0.5, "lungsight-nodule": 0.4})
    assert ((joined["score"] >= thr) == joined["call"]).all()


def test_stated_subgroup_performance_matches_the_feeds(stable_run) -> None:
    _, manifest, _, joined = stable_run
    checks = []
    for m in manifest["models"]:
        stated = m["true_performance"]["whole_run"]["subgroups"]
        d = joined[joined["ai_model"] == m["name"]]
        truth_col = f"true_{m['finding']}"
        for key, s in stated.items():
            if key == "overall":
                sub = d
            else:
                attr, value = key.split("=", 1)
                sub = d[d[attr] == value]
            pos = sub[sub[truth_col]]
            neg = sub[~sub[truth_col].astype(bool)]
            for metric, part, hits in (
                ("sensitivity", pos, pos["call"].sum()),
                ("specificity", neg, (~neg["call"]).sum()),
            ):
                if len(part) >= 30:
                    checks.append((m["name"], key, metric, s[metric], int(hits), len(part)))
    assert len(checks) > 40
    alpha = 0.01 / len(checks)
    misses = []
    for name, key, metric, value, hits, n in checks:
        lo, hi = proportion_confint(hits, n, alpha=alpha, method="wilson")
        if not lo <= value <= hi:
            misses.append((name, key, metric, value, hits / n, n))
    assert not misses, misses


def test_binormal_closed_form_on_one_scanner(stable_run) -> None:
    """Se, Sp and AUC on one scanner and version equal Phi-formulas of the stated design."""
    _, manifest, _, joined = stable_run
    for m in manifest["models"]:
        v = m["versions"][0]
        thr = m["threshold"]
        t = (math.log(thr / (1 - thr)) - v["intercept"]) / v["slope"]
        for scanner in ("NGH-CT1", "SCH-CT1"):
            sc = next(s for s in manifest["scanners"] if s["id"] == scanner)
            d = v["separation_d"] * sc["contrast_factor"]
            se = norm.cdf(sc["score_offset"] + d - t)
            sp = norm.cdf(t - sc["score_offset"])
            auc = norm.cdf(d / math.sqrt(2))
            sub = joined[
                (joined["ai_model"] == m["name"])
                & (joined["scanner_id"] == scanner)
                & (joined["age"] >= 18)
            ]
            y = sub[f"true_{m['finding']}"].astype(bool)
            for p, hits, n in ((se, sub["call"][y].sum(), y.sum()),
                               (sp, (~sub["call"][~y]).sum(), (~y).sum())):  # fmt: skip
                lo, hi = proportion_confint(int(hits), int(n), alpha=0.001, method="wilson")
                assert lo <= p <= hi, (m["name"], scanner, p, hits / n, n)
            # Hanley-McNeil standard error of the AUC
            measured = roc_auc_score(y, sub["score"])
            n1, n0 = y.sum(), (~y).sum()
            q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
            se_auc = math.sqrt(
                (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
            )
            assert abs(measured - auc) < 4 * se_auc, (m["name"], scanner, auc, measured)


def test_radiologist_error_rates(stable_run) -> None:
    _, manifest, truth, _ = stable_run
    for m in manifest["models"]:
        d = truth[truth["model"] == m["name"]]
        y = d[f"true_{m['finding']}"].astype(bool)
        lab = d["rad_label_initial"]
        for stated, hits, n in (
            (m["radiologist"]["miss_rate"], (lab[y] == "negative").sum(), y.sum()),
            (m["radiologist"]["overcall_rate"], (lab[~y] == "positive").sum(), (~y).sum()),
        ):
            lo, hi = proportion_confint(int(hits), int(n), alpha=0.001, method="wilson")
            assert lo <= stated <= hi, (m["name"], stated, hits / n)


def test_stable_run_has_no_events_and_no_change(stable_run) -> None:
    _, manifest, _, joined = stable_run
    assert manifest["events"] == []
    assert manifest["options"]["stable"] is True
    mid = joined["sent"].sort_values().iloc[len(joined) // 2]
    first, second = joined[joined["sent"] < mid], joined[joined["sent"] >= mid]
    assert set(first["ai_scanner_model"]) == set(second["ai_scanner_model"])
    assert set(joined.groupby("ai_model")["version"].nunique()) == {1}
    for name in ("neurovue-ich", "lungsight-nodule"):
        a = first[first["ai_model"] == name]["call"]
        b = second[second["ai_model"] == name]["call"]
        _, p = proportions_ztest([a.sum(), b.sum()], [len(a), len(b)])
        assert p > 0.001, (name, a.mean(), b.mean())


def _event(manifest: dict, kind: str) -> dict:
    return next(e for e in manifest["events"] if e["kind"] == kind)


def _start(e: dict) -> datetime:
    return datetime.fromisoformat(e["start_utc"])


def test_events_are_listed_with_monitor_kinds(event_run) -> None:
    _, manifest, _, _ = event_run
    kinds = {e["kind"]: e for e in manifest["events"]}
    assert set(kinds) == {
        "scanner_replacement", "population_shift", "model_version_update", "subgroup_degradation",
    }  # fmt: skip
    assert kinds["subgroup_degradation"]["monitor"] == "fairness"
    assert kinds["subgroup_degradation"]["subgroup"] == "age_band=80+"
    assert kinds["scanner_replacement"]["site"] == "EMC"
    assert {e["monitor"] for e in manifest["events"]} <= {"drift", "performance", "fairness"}
    start = datetime.fromisoformat(manifest["period"]["start"]).date()
    end = datetime.fromisoformat(manifest["period"]["end"]).date()
    assert all(start < _start(e).date() < end for e in manifest["events"])


def test_scanner_replacement_visible_in_ai_feeds(event_run) -> None:
    _, manifest, _, joined = event_run
    e = _event(manifest, "scanner_replacement")
    new, old = e["truth"]["new_scanner"], e["truth"]["old_scanner"]
    emc = joined[joined["site"] == "EMC"]
    before, after = (
        emc[emc["exam_started_at"] < _start(e)],
        emc[emc["exam_started_at"] >= _start(e)],
    )
    assert new["model"] not in set(before["ai_scanner_model"])
    assert old["model"] in set(before["ai_scanner_model"])
    assert new["model"] in set(after["ai_scanner_model"])
    assert old["model"] not in set(after["ai_scanner_model"])
    assert set(after[after["ai_scanner_model"] == new["model"]]["ai_manufacturer"]) == {
        new["manufacturer"]
    }
    # score drift: negatives score higher on the new scanner for neurovue-ich
    nv = after[(after["ai_model"] == "neurovue-ich") & ~after["true_ich"].astype(bool)]
    nv_old = before[(before["ai_model"] == "neurovue-ich") & ~before["true_ich"].astype(bool)]
    _, p = mannwhitneyu(
        nv[nv["ai_scanner_model"] == new["model"]]["score"],
        nv_old[nv_old["ai_scanner_model"] == old["model"]]["score"],
        alternative="greater",
    )
    assert p < 0.001


def test_subgroup_sensitivity_drops_after_start(event_run) -> None:
    _, manifest, _, joined = event_run
    e = _event(manifest, "subgroup_degradation")
    d = joined[(joined["ai_model"] == "neurovue-ich") & (joined["age_band"] == "80+")]
    d = d[d["true_ich"].astype(bool)]
    before, after = d[d["exam_started_at"] < _start(e)], d[d["exam_started_at"] >= _start(e)]
    hits = [int(before["call"].sum()), int(after["call"].sum())]
    n = [len(before), len(after)]
    _, p = proportions_ztest(hits, n, alternative="larger")
    assert p < 0.01, (hits, n)
    lo, hi = proportion_confint(hits[1], n[1], alpha=0.001, method="wilson")
    assert lo <= e["truth"]["after"]["sensitivity"] <= hi


def test_version_update_shifts_scores_and_flag_rate(event_run) -> None:
    _, manifest, _, joined = event_run
    e = _event(manifest, "model_version_update")
    d = joined[joined["ai_model"] == "lungsight-nodule"]
    before, after = d[d["exam_started_at"] < _start(e)], d[d["exam_started_at"] >= _start(e)]
    assert set(before["version"]) == {e["params"]["old_version"]}
    assert set(after["version"]) == {e["params"]["new_version"]}
    _, p = proportions_ztest(
        [after["call"].sum(), before["call"].sum()], [len(after), len(before)], alternative="larger"
    )
    assert p < 0.001


def test_population_shift_visible_in_ris_orders(event_run) -> None:
    out, manifest, _, _ = event_run
    e = _event(manifest, "population_shift")
    rows = []
    for path in sorted((out / "feeds" / "RADIS").glob("*.hl7")):
        for raw in path.read_bytes().decode("utf-8").split("\rMSH|"):
            if f"|{e['site']}|" not in raw[:40] or "|ORM^O01|" not in raw[:80]:
                continue
            segs = {seg.split("|")[0]: seg.split("|") for seg in raw.split("\r")}
            rows.append((hl7_time(segs["ORC"][9]), segs["PV1"][2]))
    df = pd.DataFrame(rows, columns=["ordered", "cls"])
    # orders are placed before the exam; leave a week's margin around the start
    start = pd.Timestamp(_start(e))
    before = df[df["ordered"] < start - pd.Timedelta(days=7)]
    after = df[df["ordered"] >= start + pd.Timedelta(days=7)]
    share_b, share_a = (before["cls"] == "E").mean(), (after["cls"] == "E").mean()
    assert share_a > share_b + 0.15, (share_b, share_a)


def test_ai_triage_shortens_turnaround_after_go_live(event_run) -> None:
    _, manifest, truth, _ = event_run
    for m in manifest["models"]:
        go = pd.Timestamp(m["go_live_date"], tz="UTC")
        d = truth[(truth["model"] == m["name"]) & truth["ai_call"].astype(bool)]
        d = d[d["patient_class"] == "emergency"]
        first = d["prelim_report_at"].fillna(d["final_report_at"])
        tat = (first - d["exam_ended_at"]).dt.total_seconds()
        before, after = tat[d["exam_started_at"] < go], tat[d["exam_started_at"] >= go]
        _, p = mannwhitneyu(after, before, alternative="less")
        assert p < 0.001
        assert after.median() < 0.8 * before.median()
