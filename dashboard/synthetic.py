"""A synthetic store for the dashboard's tests and benchmark (fast bulk inserts, seeded).

The real path is `vigil simulate` -> `vigil ingest` -> `vigil monitor`; this fills the same
tables directly so a page can be tested, or a 1M-study store built, in seconds rather than the
hours HL7 parsing would take. Nothing here is read by the dashboard itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import Engine, insert

from vigil.store.tables import (
    AIModel,
    AIModelVersion,
    AIResult,
    Alert,
    DeadLetter,
    FinalRead,
    ReceivedMessage,
    Site,
    Study,
)

START = datetime(2026, 1, 5, tzinfo=UTC)
SITES = ["NGH", "SCH", "EMC", "WIC"]
MODELS = [
    # name, finding, procedure, threshold, prevalence, sender
    ("neurovue-ich", "ich", "CTHEAD", 0.5, 0.10, "NEUROVUE"),
    ("lungsight-nodule", "lung_nodule", "CTCHEST", 0.5, 0.15, "LUNGSIGHT"),
]
CHUNK = 50_000


def populate(engine: Engine, n_studies: int = 2_000, *, seed: int = 7, days: int = 180) -> None:
    """Sites, two models with cards, ``n_studies`` studies with AI results and final reads,
    a few alerts, received messages and dead letters."""
    rng = np.random.default_rng(seed)
    with engine.begin() as conn:
        conn.execute(insert(Site), [{"code": c, "name": f"{c} hospital"} for c in SITES])
        for i, (name, finding, proc, thr, _prev, sender) in enumerate(MODELS, start=1):
            conn.execute(
                insert(AIModel),
                [
                    {
                        "id": i,
                        "name": name,
                        "vendor": sender.title(),
                        "product": name,
                        "finding": finding,
                        "modality": "CT",
                        "body_part": "head" if proc == "CTHEAD" else "chest",
                        "intended_use": f"Triage of {finding} on {proc}",
                        "clearance_id": f"K2{i}0000",
                        "current_version": "2.1.0",
                        "operating_threshold": thr,
                        "baseline_sensitivity": 0.90,
                        "baseline_specificity": 0.88,
                        "baseline_auc": 0.94,
                        "baseline_n": 1000,
                        "baseline_period": "2025 acceptance",
                        "target_sensitivity": 0.85,
                        "target_specificity": 0.85,
                        "go_live_date": date(2026, 2, 1),
                        "owner": "CoE",
                        "status": "active",
                        "created_at": START,
                    }
                ],
            )
            conn.execute(
                insert(AIModelVersion),
                [
                    {
                        "model_id": i,
                        "version": "2.0.0",
                        "first_seen_at": START,
                        "card_snapshot": {},
                        "changed_by": "registry",
                        "note": "first card",
                    },
                    {
                        "model_id": i,
                        "version": "2.1.0",
                        "first_seen_at": START + timedelta(days=60),
                        "card_snapshot": {},
                        "changed_by": "registry",
                        "note": "vendor update",
                    },
                ],
            )
        for lo in range(0, n_studies, CHUNK):
            _chunk(conn, rng, lo, min(n_studies, lo + CHUNK), days)
        _ops(conn, rng, days)


def _chunk(conn, rng: np.random.Generator, lo: int, hi: int, days: int) -> None:
    n = hi - lo
    ids = np.arange(lo + 1, hi + 1)
    model_idx = rng.integers(0, len(MODELS), n)
    site = rng.choice(len(SITES), n, p=[0.35, 0.25, 0.25, 0.15])
    exam_s = rng.random(n) * days * 86400
    age = np.clip(rng.normal(62, 18, n), 1, 99).astype(int)
    sex = rng.choice(["F", "M"], n)
    race = rng.choice(
        ["White", "Black or African American", "Asian", "Other"], n, p=[0.6, 0.2, 0.12, 0.08]
    )
    pclass = rng.choice(["inpatient", "outpatient", "emergency"], n, p=[0.3, 0.4, 0.3])
    scanner = rng.choice(["GE", "Siemens", "Philips"], n, p=[0.45, 0.4, 0.15])
    prev = np.array([m[4] for m in MODELS])[model_idx]
    truth = rng.random(n) < prev
    score = np.where(truth, rng.beta(5, 2, n), rng.beta(2, 5, n))
    thr = np.array([m[3] for m in MODELS])[model_idx]
    call = score >= thr
    flip = rng.random(n) < 0.04
    rad_pos = truth ^ flip
    uncertain = rng.random(n) < 0.02
    pending = rng.random(n) < 0.03
    turnaround = rng.lognormal(np.log(60), 0.5, n) * np.where(call & (exam_s > 27 * 86400), 0.7, 1)
    read_min = rng.lognormal(np.log(6), 0.4, n)
    studies, results, reads = [], [], []
    for j in range(n):
        sid = int(ids[j])
        m = MODELS[model_idx[j]]
        t = START + timedelta(seconds=float(exam_s[j]))
        rep = t + timedelta(minutes=float(turnaround[j]))
        has_rt = SITES[site[j]] in ("NGH", "SCH")
        studies.append(
            {
                "id": sid,
                "site_code": SITES[site[j]],
                "accession": f"A{sid:08d}",
                "study_uid": f"1.2.826.0.1.3680043.8.498.{sid}",
                "modality": "CT",
                "procedure_code": m[2],
                "procedure_name": m[2],
                "scanner_manufacturer": scanner[j],
                "scanner_model": f"{scanner[j]}-64",
                "patient_class": pclass[j],
                "age_at_study": int(age[j]),
                "sex": sex[j],
                "race": race[j],
                "ethnicity": "Not Hispanic or Latino",
                "ordered_at": t - timedelta(minutes=30),
                "exam_started_at": t,
                "exam_ended_at": t + timedelta(minutes=5),
                "final_report_at": rep,
                "read_started_at": rep - timedelta(minutes=float(read_min[j])) if has_rt else None,
                "read_ended_at": rep if has_rt else None,
            }
        )
        results.append(
            {
                "study_id": sid,
                "model_id": int(model_idx[j]) + 1,
                "finding": m[1],
                "model_version": "2.1.0" if exam_s[j] > 60 * 86400 else "2.0.0",
                "score": float(score[j]),
                "call": bool(call[j]),
                "received_at": t + timedelta(minutes=3),
            }
        )
        if not pending[j]:
            label = "uncertain" if uncertain[j] else ("positive" if rad_pos[j] else "negative")
            reads.append(
                {
                    "study_id": sid,
                    "finding": m[1],
                    "label": label,
                    "label_source": "coded" if j % 3 else "text",
                    "evidence": "",
                    "report_status": "F",
                    "reported_at": rep,
                    "is_current": True,
                }
            )
    conn.execute(insert(Study), studies)
    conn.execute(insert(AIResult), results)
    if reads:
        conn.execute(insert(FinalRead), reads)


def _ops(conn, rng: np.random.Generator, days: int) -> None:
    end = START + timedelta(days=days)
    for alert in [
        {
            "key": "performance|neurovue-ich||sensitivity",
            "kind": "performance",
            "model_id": 1,
            "metric": "sensitivity",
            "value": 0.80,
            "ci_low": 0.74,
            "ci_high": 0.85,
            "threshold": 0.85,
            "severity": "critical",
            "summary": "sensitivity below target",
            "status": "open",
            "first_seen": end,
            "last_seen": end,
        },
        {
            "key": "fairness|neurovue-ich|sex=F|sensitivity",
            "kind": "fairness",
            "model_id": 1,
            "subgroup": "sex=F",
            "metric": "sensitivity",
            "value": 0.78,
            "severity": "warning",
            "summary": "sensitivity gap for sex=F",
            "status": "open",
            "first_seen": end,
            "last_seen": end,
        },
        {
            "key": "drift|lungsight-nodule|site=EMC|scanner_model",
            "kind": "drift",
            "model_id": 2,
            "subgroup": "site=EMC",
            "metric": "psi:scanner_model",
            "value": 0.4,
            "threshold": 0.1,
            "severity": "warning",
            "summary": "scanner mix changed at EMC",
            "status": "open",
            "first_seen": end,
            "last_seen": end,
        },
    ]:
        conn.execute(insert(Alert), [alert])
    senders = ["RADIS", "SYNRIS", "NEUROVUE", "LUNGSIGHT"]
    msgs = []
    for k in range(600):
        t = end - timedelta(minutes=float(rng.random() * 48 * 60))
        msgs.append(
            {
                "sender": f"{senders[k % 4]}^{SITES[k % 4]}",
                "control_id": f"C{k}",
                "message_type": "ORU^R01",
                "outcome": "stored" if k % 20 else "deadletter",
                "received_at": t,
            }
        )
    conn.execute(insert(ReceivedMessage), msgs)
    conn.execute(
        insert(DeadLetter),
        [
            {
                "received_at": end - timedelta(hours=k),
                "sender": f"{senders[k % 4]}^NGH",
                "control_id": f"C{k * 20}",
                "message_type": "ORU^R01",
                "reason_code": ["missing_accession", "bad_score", "truncated_msh"][k % 3],
                "reason": "no accession in OBR-18",
                "raw_encrypted": b"x",
            }
            for k in range(30)
        ],
    )
