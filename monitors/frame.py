"""The case frame: one row per study x model x finding. Every monitor reads this and nothing else.

``CASE_FRAME_COLUMNS`` is the contract between the loader (vigil.caseframe, which reads the
store), the monitors, the dashboard, the reports and ``vigil export cases``.
"""

from __future__ import annotations

import pandas as pd

# column -> pandas dtype. Times are tz-aware UTC. ``label`` is 1/0 only where label_state is
# positive/negative; uncertain and pending rows have <NA> and are excluded from accuracy metrics.
CASE_FRAME_COLUMNS: dict[str, str] = {
    "study_id": "int64",
    "site": "category",
    "accession": "string",
    "modality": "category",
    "procedure": "category",
    "scanner_manufacturer": "category",
    "scanner_model": "category",
    "patient_class": "category",  # inpatient / outpatient / emergency
    "age": "Int64",
    "age_band": "category",  # see AGE_BANDS
    "sex": "category",
    "race": "category",
    "ethnicity": "category",
    "model": "category",  # AIModel.name
    "model_version": "category",
    "finding": "category",
    "score": "float64",
    "threshold": "float64",
    "ai_call": "boolean",  # score >= threshold (the model's operating threshold)
    "label": "Int8",  # reference label 1/0; <NA> when uncertain or pending
    "label_state": "category",  # positive / negative / uncertain / pending
    "label_source": "category",  # coded / text / adjudication / <NA> when pending
    "ordered_at": "datetime64[ns, UTC]",
    "exam_at": "datetime64[ns, UTC]",
    "ai_received_at": "datetime64[ns, UTC]",
    "prelim_report_at": "datetime64[ns, UTC]",
    "final_report_at": "datetime64[ns, UTC]",
    "turnaround_min": "float64",  # exam_at -> first report (prelim or final), minutes
    "read_min": "float64",  # OBR-32 interpretation start->end, minutes; NaN where not fed
}

AGE_BANDS: list[tuple[str, int, int]] = [
    ("0-17", 0, 17),
    ("18-39", 18, 39),
    ("40-64", 40, 64),
    ("65-79", 65, 79),
    ("80+", 80, 200),
]

SUBGROUP_ATTRIBUTES: list[str] = [
    "sex",
    "age_band",
    "race",
    "ethnicity",
    "site",
    "scanner_manufacturer",
    "patient_class",
]


def age_band(age: pd.Series) -> pd.Series:
    """Map ages in years to the AGE_BANDS labels (missing stays missing)."""
    edges = [b[1] for b in AGE_BANDS] + [AGE_BANDS[-1][2] + 1]
    labels = [b[0] for b in AGE_BANDS]
    return pd.cut(age.astype("float64"), bins=edges, right=False, labels=labels)


def empty_case_frame() -> pd.DataFrame:
    """A frame with every column and dtype and no rows."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in CASE_FRAME_COLUMNS.items()})


def validate_case_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Check the contract (columns present); raise ValueError naming what is missing."""
    missing = [c for c in CASE_FRAME_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"case frame lacks columns: {', '.join(missing)}")
    return df
