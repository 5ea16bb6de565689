"""A synthetic case frame for the statistics tests and bench/bench_monitors_stats.py.

Scores are drawn from a binormal model so the true sensitivity of every subgroup is known:
positives ~ N(mu_pos, 1), negatives ~ N(0, 1) on the logit scale. ``weak_group`` lowers mu_pos
for one group (a true disparity) so fairness tests can check it is found and others are not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitors.frame import CASE_FRAME_COLUMNS, age_band

SITES = ["NGH", "SCH", "EMC", "WIC"]
SEXES = ["F", "M"]
RACES = ["White", "Black", "Asian", "Other"]
ETHNICITIES = ["Not Hispanic or Latino", "Hispanic or Latino"]
MANUFACTURERS = ["GE", "Siemens", "Philips", "Canon"]
CLASSES = ["inpatient", "outpatient", "emergency"]


def synth_frame(
    n: int,
    *,
    seed: int = 0,
    model: str = "neurovue-ich",
    prevalence: float = 0.15,
    mu_pos: float = 2.5,
    threshold: float = 0.5,
    weak_group: tuple[str, str] | None = None,
    weak_mu_pos: float = 1.2,
    pending: float = 0.04,
    uncertain: float = 0.02,
    start: str = "2026-01-01",
    days: int = 365,
) -> pd.DataFrame:
    """``n`` rows of one model with every case-frame column and dtype."""
    rng = np.random.default_rng(seed)

    def pick(values: list[str], p=None) -> pd.Categorical:
        return pd.Categorical.from_codes(rng.choice(len(values), n, p=p), categories=values)

    cols: dict[str, object] = {
        "site": pick(SITES, [0.35, 0.25, 0.25, 0.15]),
        "sex": pick(SEXES),
        "race": pick(RACES, [0.6, 0.2, 0.12, 0.08]),
        "ethnicity": pick(ETHNICITIES, [0.85, 0.15]),
        "scanner_manufacturer": pick(MANUFACTURERS, [0.4, 0.3, 0.2, 0.1]),
        "patient_class": pick(CLASSES, [0.3, 0.5, 0.2]),
    }
    age = rng.integers(5, 95, n)
    truth = rng.random(n) < prevalence
    mu = np.full(n, mu_pos)
    if weak_group is not None:
        attr, value = weak_group
        mu = np.where(np.asarray(cols[attr]) == value, weak_mu_pos, mu)
    logit = rng.normal(size=n) + np.where(truth, mu, 0.0) - 1.0
    score = 1.0 / (1.0 + np.exp(-logit))
    u = rng.random(n)
    state = np.where(truth, "positive", "negative").astype(object)
    state[u < uncertain] = "uncertain"
    state[(u >= uncertain) & (u < uncertain + pending)] = "pending"
    label = pd.array(np.where(truth, 1, 0), dtype="Int8")
    label[(state == "uncertain") | (state == "pending")] = pd.NA
    exam = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(
        np.sort(rng.random(n)) * days * 86400, unit="s"
    )
    df = pd.DataFrame(
        {
            "study_id": np.arange(1, n + 1, dtype="int64"),
            "accession": pd.array([f"A{i}" for i in range(n)], dtype="string")
            if n <= 200_000
            else pd.array(np.full(n, None), dtype="string"),
            "modality": pd.Categorical(np.full(n, "CT")),
            "procedure": pd.Categorical(np.full(n, "CTHEAD")),
            "scanner_model": pd.Categorical(np.full(n, "X")),
            "age": pd.array(age, dtype="Int64"),
            "model": pd.Categorical(np.full(n, model)),
            "model_version": pd.Categorical(np.full(n, "1.0")),
            "finding": pd.Categorical(np.full(n, "ich")),
            "score": score,
            "threshold": np.full(n, threshold),
            "ai_call": pd.array(score >= threshold, dtype="boolean"),
            "label": label,
            "label_state": pd.Categorical(state),
            "label_source": pd.Categorical(np.where(state == "pending", None, "coded")),
            "ordered_at": exam,
            "exam_at": exam,
            "ai_received_at": exam,
            "prelim_report_at": exam,
            "final_report_at": exam,
            "turnaround_min": np.full(n, 30.0),
            "read_min": np.full(n, np.nan),
            **cols,
        }
    )
    df["age_band"] = age_band(df["age"])
    return df[list(CASE_FRAME_COLUMNS)].astype(CASE_FRAME_COLUMNS)
