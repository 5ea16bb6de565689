"""Studies with production AI scores, straight into the store, for tests and benchmarks.

A test helper (imported as ``models_fixtures`` with tests/ on sys.path, as pytest and
``bench/bench_rescore.py`` do), kept out of the shipped ``models`` package.

The re-scoring tests need studies, AI results and radiologist reads in the store before (and
independently of) the HL7 connectors. ``synthetic_truth`` draws a small truth table with the
simulator's own score model (``vigil.simulate.scores`` and its scanner and model catalogue), in
the columns of ``truth.parquet``; ``store_truth`` inserts such a table (or a simulator run's real
``truth.parquet``) as Site, Study, AIModel (an ingest-style "unregistered" row when missing),
AIResult and FinalRead rows. The demo path uses the real ingest instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine
from sqlmodel import select

from models.truth import column
from vigil.store.db import session_scope
from vigil.store.tables import AIModel, AIResult, FinalRead, Site, Study

LABELS = {0: "negative", 1: "positive", 2: "uncertain"}


def synthetic_truth(n: int, model: str = "neurovue-ich", seed: int = 0, months: int = 3):
    """``n`` CT studies of one simulated model, latents and score as the simulator draws them."""
    from pydicom.uid import generate_uid

    from vigil.simulate import catalog as C
    from vigil.simulate.scores import draw_latents, to_score

    rng = np.random.default_rng(seed)
    spec = next(m for m in C.MODELS if m.name == model)
    version = spec.versions[0]
    scanners = [s for s in C.SCANNERS if s.modality == "CT" and not s.replacement]
    k = rng.integers(0, len(scanners), n)
    sc = [scanners[i] for i in k]
    contrast = np.array([s.contrast for s in sc])
    offset = np.array([s.offset for s in sc])
    age = rng.integers(18, 95, n)
    prevalence = 0.25  # enriched so that small tests have positives and discordant cases
    y = (rng.random(n) < prevalence).astype(float)
    sep = np.full(n, version.separation)
    visibility, noise, z = draw_latents(rng, y, sep, contrast, offset)
    score = to_score(z, np.full(n, version.slope), np.full(n, version.intercept))
    u = rng.random(n)
    label = np.where(
        y == 1,
        np.where(u < spec.miss_rate, 0, np.where(u < spec.miss_rate + spec.uncertain_pos, 2, 1)),
        np.where(
            u < spec.overcall_rate, 1, np.where(u < spec.overcall_rate + spec.uncertain_neg, 2, 0)
        ),
    )
    start = datetime(2025, 11, 1, tzinfo=UTC)
    exam = [start + timedelta(minutes=int(m)) for m in np.sort(rng.integers(0, months * 43200, n))]
    uid_root = f"{seed}-{model}"
    return pd.DataFrame(
        {
            "study_uid": [str(generate_uid(entropy_srcs=[uid_root, str(i)])) for i in range(n)],
            "accession": [f"{s.site}{seed % 1000:03d}{i:07d}" for i, s in enumerate(sc)],
            "site": [s.site for s in sc],
            "model": model,
            "finding": spec.finding,
            "model_version": version.version,
            "procedure_code": spec.procedure,
            "scanner_manufacturer": [s.manufacturer for s in sc],
            "scanner_model": [s.model for s in sc],
            "kvp": [s.kvp for s in sc],
            "contrast": contrast,
            "score_offset": offset,
            "visibility": visibility,
            "noise": noise,
            "z": z,
            "slope": version.slope,
            "intercept": version.intercept,
            "ai_score": score,
            "ai_call": score >= spec.threshold,
            "true_finding": y.astype(int),
            "radiologist_label": [LABELS[int(v)] for v in label],
            "seed": rng.integers(0, 2**62, n),
            "age": age,
            "sex": rng.choice(["F", "M"], n),
            "race": rng.choice(["White", "Black or African American", "Asian"], n),
            "patient_class": rng.choice(["inpatient", "outpatient", "emergency"], n),
            "exam_started_at": exam,
        }
    )


def _label(v) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, str):
        return v if v in ("positive", "negative", "uncertain") else None
    return LABELS.get(int(v))


def store_truth(engine: Engine, df: pd.DataFrame, model: str | None = None) -> dict[str, int]:
    """Insert the truth rows (of ``model``) as studies with AI results and final reads."""
    from models.truth import BODY_OF_MODEL, COLUMNS  # noqa: F401  (documented column spellings)

    c = {k: column(df, k, required=False) for k in COLUMNS}
    if model is not None and c["model"]:
        df = df[df[c["model"]].astype(str) == model]
    name = model or str(df[c["model"]].iloc[0])
    finding = str(df["finding"].iloc[0]) if "finding" in df else name.split("-")[-1]
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        m = s.exec(select(AIModel).where(AIModel.name == name)).first()
        if m is None:  # what ingest does for a model it has not seen: an unregistered row
            m = AIModel(name=name, finding=finding, status="unregistered", created_at=now)
            s.add(m)
            s.flush()
        finding = m.finding
        sites = set(s.exec(select(Site.code)).all())
        for code in sorted(set(df[c["site"]].astype(str)) - sites):
            s.add(Site(code=code, name=code))
        s.flush()
        studies = []
        for rec in df.to_dict("records"):
            exam = rec.get(c["exam_at"]) if c["exam_at"] else None
            exam = pd.Timestamp(exam).to_pydatetime() if exam is not None else None
            if exam is not None and exam.tzinfo is None:
                exam = exam.replace(tzinfo=UTC)
            st = Study(
                site_code=str(rec[c["site"]]),
                accession=str(rec[c["accession"]]),
                study_uid=str(rec[c["study_uid"]]),
                modality="CT",
                procedure_code=str(rec[c["procedure"]]) if c["procedure"] else None,
                scanner_manufacturer=str(rec[c["manufacturer"]]) if c["manufacturer"] else None,
                scanner_model=str(rec[c["scanner_model"]]) if c["scanner_model"] else None,
                age_at_study=int(rec[c["age"]]) if c["age"] else None,
                sex=str(rec[c["sex"]]) if c["sex"] else None,
                race=str(rec[c["race"]]) if c["race"] else None,
                patient_class=str(rec[c["patient_class"]]) if c["patient_class"] else None,
                exam_started_at=exam,
            )
            studies.append((st, rec))
            s.add(st)
        s.flush()
        for st, rec in studies:
            score = float(rec[c["score"]])
            s.add(
                AIResult(
                    study_id=st.id,
                    model_id=m.id,
                    finding=finding,
                    model_version=str(rec[c["version"]]) if c["version"] else "",
                    score=score,
                    call=score >= m.operating_threshold,
                    received_at=(exam or now) + timedelta(minutes=4),
                )
            )
            label = _label(rec[c["label"]]) if c["label"] else None
            if label:
                s.add(
                    FinalRead(
                        study_id=st.id,
                        finding=finding,
                        label=label,
                        label_source="coded",
                        report_status="F",
                        reported_at=(exam or now) + timedelta(hours=2),
                    )
                )
    return {"studies": len(studies), "model_id": int(m.id)}
