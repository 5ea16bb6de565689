"""Synthetic case frames for the monitor tests: a small network whose truth the test controls.

Independent of the simulator on purpose: each test states the exact shift it injects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitors.frame import CASE_FRAME_COLUMNS, age_band

SITES = ("NGH", "SCH", "EMC", "WIC")
SITE_P = (0.35, 0.25, 0.25, 0.15)
SCANNERS = {
    "NGH": (("SIEMENS", "SOMATOM Force"), ("GE", "Revolution CT")),
    "SCH": (("GE", "Optima CT660"),),
    "EMC": (("SIEMENS", "Definition AS+"), ("Philips", "Brilliance iCT")),
    "WIC": (("CANON", "Aquilion Prime"),),
}


def synthetic_frame(
    n: int,
    *,
    seed: int = 0,
    months: int = 12,
    start: str = "2026-01-01",
    model: str = "neurovue-ich",
    threshold: float = 0.5,
    sensitivity_drop: tuple[str, str, float] | None = None,  # (site, from month, separation loss)
    scanner_change: tuple[str, str] | None = None,  # (site, from month): new scanner model
) -> pd.DataFrame:
    """``n`` rows of one model over ``months`` months, stable unless a shift is asked for."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start, tz="UTC")
    span = (t0 + pd.DateOffset(months=months)) - t0
    exam = t0 + pd.to_timedelta(rng.uniform(0, span.total_seconds(), n).round(), unit="s")
    month = exam.strftime("%Y-%m")
    site = rng.choice(SITES, n, p=SITE_P)
    manu = np.empty(n, dtype=object)
    smodel = np.empty(n, dtype=object)
    for s, scanners in SCANNERS.items():
        idx = np.flatnonzero(site == s)
        pick = rng.integers(0, len(scanners), len(idx))
        manu[idx] = [scanners[i][0] for i in pick]
        smodel[idx] = [scanners[i][1] for i in pick]
    sep = np.full(n, 2.8)
    if scanner_change:
        sel = (site == scanner_change[0]) & (month >= scanner_change[1])
        manu[sel], smodel[sel] = "CANON", "Aquilion ONE PRISM"
    if sensitivity_drop:
        sel = (site == sensitivity_drop[0]) & (month >= sensitivity_drop[1])
        sep[sel] -= sensitivity_drop[2]
    truth = rng.random(n) < 0.12
    z = rng.normal(0, 1, n) + truth * sep
    score = 1 / (1 + np.exp(-(1.6 * z - 2.6)))
    read = np.where(rng.random(n) < 0.03, "uncertain", np.where(truth, "positive", "negative"))
    read = np.where(rng.random(n) < 0.02, "pending", read)
    age = np.clip(rng.normal(58, 19, n).round(), 18, 100).astype("int64")
    df = pd.DataFrame(
        {
            "study_id": np.arange(1, n + 1, dtype="int64"),
            "site": site,
            "accession": [f"A{i}" for i in range(n)],
            "modality": "CT",
            "procedure": "CTHEAD",
            "scanner_manufacturer": manu,
            "scanner_model": smodel,
            "patient_class": rng.choice(["inpatient", "outpatient", "emergency"], n),
            "age": pd.array(age, dtype="Int64"),
            "sex": rng.choice(["F", "M"], n),
            "race": rng.choice(["White", "Black or African American", "Asian"], n),
            "ethnicity": rng.choice(["Hispanic or Latino", "Not Hispanic or Latino"], n),
            "model": model,
            "model_version": "3.1.2",
            "finding": "ich",
            "score": score,
            "threshold": threshold,
            "ai_call": score >= threshold,
            "label": pd.array(
                np.where(read == "positive", 1, np.where(read == "negative", 0, -1)), dtype="Int8"
            ),
            "label_state": read,
            "label_source": np.where(read == "pending", None, "text"),
            "ordered_at": exam - pd.Timedelta(minutes=30),
            "exam_at": exam,
            "ai_received_at": exam + pd.Timedelta(minutes=4),
            "prelim_report_at": pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]"),
            "final_report_at": exam + pd.Timedelta(minutes=60),
            "turnaround_min": 60.0,
            "read_min": np.nan,
        }
    )
    df.loc[df["label"] == -1, "label"] = pd.NA
    df["age_band"] = age_band(df["age"])
    for c, t in CASE_FRAME_COLUMNS.items():
        df[c] = df[c].astype(t)
    return df[list(CASE_FRAME_COLUMNS)].sort_values("exam_at").reset_index(drop=True)


# --- frames from the simulator's truth (the large benchmarks and the event-detection tests) -----


def simulated_network(studies: int, *, months: int = 12, seed: int = 0, stable: bool = False):
    """Build a simulated network in memory (no feed files): (truth DataFrame, model infos,
    events as dicts). Uses the simulator's Python API; 1M studies take a few seconds."""
    import tomllib

    from vigil.monitoring import ModelInfo
    from vigil.simulate.config import SimulationConfig
    from vigil.simulate.feeds import build_plan
    from vigil.simulate.network import build
    from vigil.simulate.outputs import _acceptance, manifest, model_card, truth_table

    cfg = SimulationConfig(studies=studies, months=months, seed=seed, stable=stable)
    net = build(cfg)
    plan = build_plan(net)
    import inspect

    args = (net,) if len(inspect.signature(truth_table).parameters) == 1 else (net, plan)
    truth = truth_table(*args).to_pandas()
    infos = []
    for mi in range(len(net.go_live)):
        card = tomllib.loads(model_card(net, mi, _acceptance(net, mi)))
        infos.append(
            ModelInfo(
                name=card["name"],
                finding=card["finding"],
                operating_threshold=card["operating_threshold"],
                baseline_sensitivity=card.get("baseline_sensitivity"),
                baseline_specificity=card.get("baseline_specificity"),
                baseline_auc=card.get("baseline_auc"),
                baseline_ppv=card.get("baseline_ppv"),
                baseline_n=card.get("baseline_n"),
                target_sensitivity=card.get("target_sensitivity"),
                target_specificity=card.get("target_specificity"),
                go_live_date=card.get("go_live_date"),
            )
        )
    events = manifest(net, plan)["events"]
    return truth, infos, events


def frame_from_truth(truth: pd.DataFrame, models) -> pd.DataFrame:
    """The case frame the loader would build after a perfect ingest of the simulated feeds."""
    t = truth[truth["model"].notna()].reset_index(drop=True)
    thr = {m.name: m.operating_threshold for m in models}
    n = len(t)
    score = t["ai_score"].astype("float64")
    threshold = t["model"].map(thr).astype("float64")
    state = t["rad_label_final"].astype("string").fillna("pending")
    label = pd.array(
        np.where(state == "positive", 1, np.where(state == "negative", 0, 0)), dtype="Int8"
    )
    label[~state.isin(["positive", "negative"]).to_numpy()] = pd.NA
    utc = "datetime64[ns, UTC]"
    exam = t["exam_started_at"].astype(utc)
    prelim, final = t["prelim_report_at"].astype(utc), t["final_report_at"].astype(utc)
    first = pd.concat([prelim, final], axis=1).min(axis=1)
    df = pd.DataFrame(
        {
            "study_id": np.arange(1, n + 1, dtype="int64"),
            "site": t["site"],
            "accession": t["accession"],
            "modality": t["modality"],
            "procedure": t["procedure_code"],
            "scanner_manufacturer": t["scanner_manufacturer"],
            "scanner_model": t["scanner_model"],
            "patient_class": t["patient_class"],
            "age": t["age"].astype("Int64"),
            "age_band": t["age"],
            "sex": t["sex"],
            "race": t["race"],
            "ethnicity": t["ethnicity"],
            "model": t["model"],
            "model_version": t["model_version"],
            "finding": t["finding"],
            "score": score,
            "threshold": threshold,
            "ai_call": pd.array(score >= threshold, dtype="boolean"),
            "label": label,
            "label_state": state,
            "label_source": pd.Series(np.where(t["report_coded"], "coded", "text")).where(
                state != "pending"
            ),
            "ordered_at": t["ordered_at"].astype(utc),
            "exam_at": exam,
            "ai_received_at": t["ai_result_at"].astype(utc),
            "prelim_report_at": prelim,
            "final_report_at": final,
            "turnaround_min": (first - exam).dt.total_seconds() / 60.0,
            "read_min": (t["read_ended_at"] - t["read_started_at"]).dt.total_seconds() / 60.0,
        }
    )
    df["age_band"] = age_band(df["age"])
    for c, typ in CASE_FRAME_COLUMNS.items():
        if c == "label_state":
            df[c] = df[c].astype(
                pd.CategoricalDtype(["positive", "negative", "uncertain", "pending"])
            )
        elif c != "age_band":
            df[c] = df[c].astype(typ)
    return df[list(CASE_FRAME_COLUMNS)]


def seed_sites_and_models(conn, frame: pd.DataFrame, models) -> dict[str, int]:
    """Insert the frame's sites and the models' cards (ids 1..n); returns model name -> id.
    Shared by the test store below and bench/bench_caseframe.py's bulk store."""
    from sqlalchemy import insert

    from vigil.store.tables import AIModel, Site

    conn.execute(insert(Site), [{"code": str(s), "name": str(s)} for s in frame["site"].unique()])
    ids = {}
    for i, m in enumerate(models, start=1):
        conn.execute(
            insert(AIModel),
            [
                {
                    "id": i,
                    "name": m.name,
                    "finding": m.finding,
                    "operating_threshold": m.operating_threshold,
                    "baseline_sensitivity": m.baseline_sensitivity,
                    "baseline_specificity": m.baseline_specificity,
                    "go_live_date": m.go_live_date,
                    "status": "active",
                    "vendor": "",
                    "product": "",
                    "modality": "CT",
                    "body_part": "",
                    "intended_use": "",
                    "clearance_id": "",
                    "current_version": "",
                    "baseline_period": "",
                    "owner": "",
                }
            ],
        )
        ids[m.name] = i
    return ids


def seed_store_from_frame(engine, frame: pd.DataFrame, models) -> None:
    """Write a case frame's rows into the store (sites, models, studies, AI results, reads) with
    bulk inserts, so that the loader and the runner read them back through SQL."""
    from sqlalchemy import insert

    from vigil.store.tables import AIResult, FinalRead, Study

    def ts(v):
        return None if pd.isna(v) else v.to_pydatetime()

    def val(v):
        return None if pd.isna(v) else v

    with engine.begin() as conn:
        ids = seed_sites_and_models(conn, frame, models)
        rows = frame.to_dict("records")
        studies, results, reads = [], [], []
        for r in rows:
            sid = int(r["study_id"])
            studies.append(
                {
                    "id": sid,
                    "site_code": str(r["site"]),
                    "accession": str(r["accession"]),
                    "modality": val(r["modality"]),
                    "procedure_code": val(r["procedure"]),
                    "scanner_manufacturer": val(r["scanner_manufacturer"]),
                    "scanner_model": val(r["scanner_model"]),
                    "patient_class": val(r["patient_class"]),
                    "age_at_study": None if pd.isna(r["age"]) else int(r["age"]),
                    "sex": val(r["sex"]),
                    "race": val(r["race"]),
                    "ethnicity": val(r["ethnicity"]),
                    "ordered_at": ts(r["ordered_at"]),
                    "exam_started_at": ts(r["exam_at"]),
                    "prelim_report_at": ts(r["prelim_report_at"]),
                    "final_report_at": ts(r["final_report_at"]),
                }
            )
            results.append(
                {
                    "study_id": sid,
                    "model_id": ids[str(r["model"])],
                    "finding": str(r["finding"]),
                    "model_version": str(r["model_version"]),
                    "score": float(r["score"]),
                    "call": bool(r["ai_call"]),
                    "received_at": ts(r["ai_received_at"]),
                    "source_message_id": "",
                }
            )
            if r["label_state"] != "pending":
                reads.append(
                    {
                        "study_id": sid,
                        "finding": str(r["finding"]),
                        "label": str(r["label_state"]),
                        "label_source": str(r["label_source"]),
                        "report_status": "F",
                        "reported_at": ts(r["final_report_at"]),
                        "is_current": True,
                        "evidence": "",
                        "source_message_id": "",
                    }
                )
        conn.execute(insert(Study), studies)
        conn.execute(insert(AIResult), results)
        if reads:
            conn.execute(insert(FinalRead), reads)
    if engine.dialect.name == "postgresql":  # explicit ids: move the sequences past them
        with engine.begin() as conn:
            from sqlalchemy import text

            for table in ("study", "aimodel"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT MAX(id) FROM {table}))"
                    )
                )
