"""Reading the simulator's ``truth.parquet``: the latents that drove each vendor score.

Used for two things only: rendering the DICOM images of sampled studies (``vigil.simulate.dicom``)
and training the demo model. Column names are resolved from a few spellings so that the reader
survives small renames in the simulator; a missing column is named in the error.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from vigil.errors import InvalidInputError
from vigil.simulate.dicom import StudyImage

# logical name -> accepted column names, first match wins
COLUMNS: dict[str, tuple[str, ...]] = {
    "study_uid": ("study_uid", "study_instance_uid"),
    "accession": ("accession", "accession_number"),
    "site": ("site", "site_code"),
    "model": ("model", "model_name", "ai_model"),
    "manufacturer": ("scanner_manufacturer", "manufacturer"),
    "scanner_model": ("scanner_model", "manufacturer_model_name"),
    "contrast": ("contrast", "scanner_contrast", "contrast_factor", "scanner_contrast_factor"),
    "offset": ("score_offset", "offset", "scanner_offset"),
    "visibility": ("visibility", "finding_visibility"),
    "noise": ("noise", "vendor_noise", "score_noise"),
    "z": ("latent_z", "z", "latent", "latent_score"),
    "slope": ("slope", "score_slope"),
    "intercept": ("intercept", "score_intercept"),
    "score": ("ai_score", "score"),
    "seed": ("seed", "study_seed", "image_seed"),
    "body_part": ("body_part",),
    "procedure": ("procedure_code", "procedure", "proc"),
    "age": ("age", "age_at_study"),
    "sex": ("sex",),
    "exam_at": ("exam_started_at", "exam_start", "exam_at"),
    "kvp": ("kvp", "scanner_kvp"),
    "version": ("model_version", "algorithm_version", "version"),
    "truth": ("true_finding", "finding_true", "y"),
    "label": ("rad_label_final", "radiologist_label", "rad_label", "label", "rad_final"),
    "scanner_id": ("scanner_id", "scanner_key"),
    "race": ("race",),
    "ethnicity": ("ethnicity",),
    "patient_class": ("patient_class", "pclass"),
}
BODY_OF_MODEL = {"neurovue-ich": "HEAD", "lungsight-nodule": "CHEST"}


def column(df: pd.DataFrame, logical: str, required: bool = True) -> str | None:
    for name in COLUMNS[logical]:
        if name in df.columns:
            return name
    if required:
        raise InvalidInputError(
            f"truth table lacks a '{logical}' column (looked for {', '.join(COLUMNS[logical])})"
        )
    return None


def vendor_evidence(row: dict[str, Any]) -> float:
    """The vendor's logit for one study, from the latents (slope * z + intercept).

    ``z = offset + contrast * visibility + noise`` is the simulator's latent score. Where the
    latents are not in the table, the logit of the score the vendor sent is the same number
    (up to the vendor's 4-decimal rounding).
    """
    slope, intercept = row.get("slope"), row.get("intercept")
    z = row.get("z")
    parts = [row.get(k) for k in ("offset", "contrast", "visibility", "noise")]
    if all(_finite(p) for p in parts):
        off, con, vis, noi = (float(p) for p in parts)
        z = off + con * vis + noi
    if _finite(slope) and _finite(intercept) and _finite(z):
        return float(slope) * float(z) + float(intercept)
    score = row.get("score")
    if not _finite(score):
        raise InvalidInputError(f"study {row.get('study_uid')}: no latents and no score to render")
    p = min(max(float(score), 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _body_part(row: dict[str, Any], model: str | None) -> str:
    if model in BODY_OF_MODEL:
        return BODY_OF_MODEL[model]
    bp = str(row.get("body_part") or "").upper()
    if bp in ("HEAD", "CHEST"):
        return bp
    proc = str(row.get("procedure") or "").upper()
    return "HEAD" if "HEAD" in proc else "CHEST"


def _when(v: Any) -> datetime | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (int, np.integer)):
        return datetime.fromtimestamp(int(v), UTC)
    ts = pd.Timestamp(v)
    if pd.isna(ts):
        return None
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()


def _catalogue() -> tuple[dict[tuple[str, str], tuple[float, float]], dict[str, Any]]:
    """The simulator's fixed facts the table leaves out: (model, version) -> (slope,
    intercept) of the vendor's logistic link, and scanner id -> scanner (kVp, slice)."""
    from vigil.simulate import catalog as C

    link = {(m.name, v.version): (v.slope, v.intercept) for m in C.MODELS for v in m.versions}
    return link, {s.key: s for s in C.SCANNERS}


def studies_from_truth(df: pd.DataFrame, model: str | None = None) -> list[StudyImage]:
    """One StudyImage per truth row (of ``model`` when given and the table has a model column)."""
    cols = {k: column(df, k, required=k in ("study_uid", "accession")) for k in COLUMNS}
    if cols["model"]:
        keep = df[cols["model"]].notna()
        if model is not None:
            keep &= df[cols["model"]].astype(str) == model
        df = df[keep]
    link, scanners = _catalogue()
    out = []
    for rec in df.to_dict("records"):
        row = {k: (rec[c] if c else None) for k, c in cols.items()}
        key = (str(row["model"] or model), str(row["version"] or ""))
        if not _finite(row["slope"]) and key in link:
            row["slope"], row["intercept"] = link[key]
        scanner = scanners.get(str(row["scanner_id"] or ""))
        if scanner is not None and not _finite(row["kvp"]):
            row["kvp"] = scanner.kvp
        seed = row["seed"]
        if not _finite(seed):
            seed = int.from_bytes(str(row["study_uid"]).encode()[-8:], "little")
        out.append(
            StudyImage(
                study_uid=str(row["study_uid"]),
                accession=str(row["accession"]),
                body_part=_body_part(row, model or (str(row["model"]) if row["model"] else None)),
                evidence=vendor_evidence(row),
                seed=int(seed),
                manufacturer=str(row["manufacturer"] or "SIMULATED"),
                scanner_model=str(row["scanner_model"] or "CT"),
                contrast_factor=float(row["contrast"]) if _finite(row["contrast"]) else 1.0,
                site=str(row["site"] or ""),
                sex=str(row["sex"] or "") if isinstance(row["sex"], str) else "",
                age=int(row["age"]) if _finite(row["age"]) else None,
                exam_at=_when(row["exam_at"]),
                kvp=float(row["kvp"]) if _finite(row["kvp"]) and float(row["kvp"]) > 0 else 120.0,
                slice_mm=float(scanner.slice_mm) if scanner is not None else None,
            )
        )
    return out
