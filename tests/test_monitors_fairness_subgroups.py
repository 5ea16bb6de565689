"""monitors.fairness against fairlearn's MetricFrame, scikit-learn, statsmodels and scipy."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, true_negative_rate
from hypothesis import given, settings
from hypothesis import strategies as st
from monitors_synth import synth_frame
from scipy.stats import fisher_exact
from sklearn.metrics import precision_score, recall_score, roc_auc_score
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from monitors.fairness import MISSING, fairness_scan, group_codes, subgroup_table
from monitors.results import Status

MODEL = "neurovue-ich"


@pytest.fixture(scope="module")
def biased() -> pd.DataFrame:
    """Site EMC has a truly weaker model (lower separation for positives)."""
    return synth_frame(20000, seed=4, weak_group=("site", "EMC"))


def _lab(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["label"].notna()]


def _rows(table, metric: str) -> dict[str, object]:
    return {r.group: r for r in table.rows if r.metric == metric}


def test_per_group_metrics_match_fairlearn_metricframe(biased: pd.DataFrame) -> None:
    table = subgroup_table(
        biased, model=MODEL, attribute="site", metrics=("sensitivity", "specificity", "ppv", "npv")
    )
    lab = _lab(biased)
    mf = MetricFrame(
        metrics={
            "sensitivity": recall_score,
            "specificity": true_negative_rate,
            "ppv": precision_score,
        },
        y_true=lab["label"].astype(int),
        y_pred=lab["ai_call"].astype(int),
        sensitive_features=lab["site"].astype(str),
    )
    for metric in ("sensitivity", "specificity", "ppv"):
        rows = _rows(table, metric)
        for site, ref in mf.by_group[metric].items():
            assert rows[site].estimate.value == pytest.approx(ref, rel=1e-12), (metric, site)
    assert table.groups == ["NGH", "SCH", "EMC", "WIC"]


def test_group_vs_rest_test_and_ci_match_statsmodels(biased: pd.DataFrame) -> None:
    table = subgroup_table(biased, model=MODEL, attribute="site", metrics=("sensitivity",))
    lab = _lab(biased)
    pos = lab[lab["label"] == 1]
    in_g = pos["site"] == "EMC"
    x1, n1 = int(pos.loc[in_g, "ai_call"].sum()), int(in_g.sum())
    x2, n2 = int(pos.loc[~in_g, "ai_call"].sum()), int((~in_g).sum())
    row = _rows(table, "sensitivity")["EMC"]
    assert row.test == "two-proportion-z"
    assert row.p_value == pytest.approx(proportions_ztest([x1, x2], [n1, n2])[1], rel=1e-9)
    assert row.gap == pytest.approx(x1 / n1 - x2 / n2)
    assert (row.estimate.ci_low, row.estimate.ci_high) == pytest.approx(
        proportion_confint(x1, n1, method="wilson")
    )
    assert row.rest.n == n2 and row.rest.numerator == x2
    assert row.alert and row.p_adjusted <= 0.05


def test_auc_per_group_and_rest_match_sklearn(biased: pd.DataFrame) -> None:
    table = subgroup_table(biased, model=MODEL, attribute="race", metrics=("auc",))
    lab = _lab(biased)
    for race, row in _rows(table, "auc").items():
        g = lab["race"] == race
        assert row.estimate.value == pytest.approx(
            roc_auc_score(lab.loc[g, "label"].astype(int), lab.loc[g, "score"]), rel=1e-12
        )
        assert row.rest.value == pytest.approx(
            roc_auc_score(lab.loc[~g, "label"].astype(int), lab.loc[~g, "score"]), rel=1e-12
        )
        assert row.test == "delong-independent"
        assert row.gap == pytest.approx(row.estimate.value - row.rest.value)


def test_auc_group_variance_equals_delong_on_the_subset(biased: pd.DataFrame) -> None:
    from monitors.stats import delong_auc

    table = subgroup_table(biased, model=MODEL, attribute="sex", metrics=("auc",))
    lab = _lab(biased)
    row = _rows(table, "auc")["F"]
    g = lab["sex"] == "F"
    a = delong_auc(lab.loc[g, "label"].astype(int), lab.loc[g, "score"])
    b = delong_auc(lab.loc[~g, "label"].astype(int), lab.loc[~g, "score"])
    se = np.sqrt(a.variance + b.variance)
    from scipy.stats import norm

    assert row.p_value == pytest.approx(2 * norm.sf(abs(a.auc - b.auc) / se), rel=1e-9)
    assert (row.estimate.ci_low, row.estimate.ci_high) == pytest.approx(a.ci, rel=1e-9)


def test_masked_and_small_groups() -> None:
    """A group with no positive case: fairlearn's recall is 0 (with a warning) -- ours is
    UNDEFINED; a small group: fairlearn reports a number -- ours INSUFFICIENT_DATA and untested;
    a missing attribute value is its own group."""
    df = synth_frame(4000, seed=8)
    race = df["race"].astype(object)
    lab = df["label"].to_numpy(dtype="float64", na_value=np.nan)
    few = np.flatnonzero(lab == 0)[:25]  # 25 negatives only: no positives in the group
    race[few] = "Pacific Islander"
    race[np.flatnonzero(lab == 1)[:10]] = None  # missing race for 10 positives
    df["race"] = pd.Categorical(race)
    table = subgroup_table(
        df, model=MODEL, attribute="race", metrics=("sensitivity", "specificity")
    )
    sens, spec = _rows(table, "sensitivity"), _rows(table, "specificity")
    assert sens["Pacific Islander"].status is Status.UNDEFINED
    assert sens["Pacific Islander"].estimate.value is None and not sens["Pacific Islander"].alert
    assert spec["Pacific Islander"].status is Status.INSUFFICIENT_DATA
    assert (
        spec["Pacific Islander"].p_value is None and "not tested" in spec["Pacific Islander"].reason
    )
    assert sens[MISSING].estimate.n == 10
    l2 = _lab(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = MetricFrame(
            metrics={"sensitivity": recall_score},
            y_true=l2["label"].astype(int),
            y_pred=l2["ai_call"].astype(int),
            # fairlearn refuses missing values; we keep them as the group "(missing)"
            sensitive_features=l2["race"].astype(object).fillna(MISSING),
        )
    assert mf.by_group["sensitivity"]["Pacific Islander"] == 0.0  # fairlearn: a silent 0
    for group, ref in mf.by_group["sensitivity"].items():
        est = sens[group].estimate
        if est.status is Status.OK:
            assert est.value == pytest.approx(ref, rel=1e-12)


def test_fisher_exact_where_expected_counts_are_small() -> None:
    df = synth_frame(3000, seed=12)
    eth = np.where(np.arange(len(df)) < 20, "Tiny", "Big")
    df["ethnicity"] = pd.Categorical(eth)
    table = subgroup_table(df, model=MODEL, attribute="ethnicity", metrics=("ppv",), min_n=3)
    lab = _lab(df)
    flagged = lab["ai_call"].astype(bool)
    row = _rows(table, "ppv")["Tiny"]
    assert row.test == "fisher-exact"
    g = lab["ethnicity"] == "Tiny"
    a, b = lab[g & flagged], lab[~g & flagged]
    t = [
        [int(a["label"].sum()), len(a) - int(a["label"].sum())],
        [int(b["label"].sum()), len(b) - int(b["label"].sum())],
    ]
    assert row.p_value == pytest.approx(fisher_exact(t).pvalue)
    assert _rows(table, "ppv")["Big"].test == "fisher-exact"  # same 2x2 table, same test


def test_scan_applies_bh_across_everything(biased: pd.DataFrame) -> None:
    scan = fairness_scan(biased, model=MODEL, intersections=[("sex", "age_band")])
    rows = [r for t in scan.tables for r in t.rows]
    tested = [r for r in rows if r.p_value is not None]
    assert scan.n_tests == len(tested) > 50
    rej, adj, _, _ = multipletests([r.p_value for r in tested], alpha=0.05, method="fdr_bh")
    np.testing.assert_allclose([r.p_adjusted for r in tested], adj, rtol=1e-12)
    for r, reject in zip(tested, rej, strict=True):
        if r.alert:
            assert reject and r.gap <= -0.05 and r.estimate.n >= 30
    assert [t.attribute for t in scan.tables][-1] == "sex x age_band"
    assert any(" | " in g for g in scan.tables[-1].groups)
    alerted = {(a.attribute, a.group, a.metric) for a in scan.alerts}
    assert ("site", "EMC", "sensitivity") in alerted
    assert ("site", "EMC", "auc") in alerted
    # only the truly weaker site (and intersections cannot contain EMC) is flagged
    assert {g for a, g, _ in alerted if a == "site"} == {"EMC"}
    json.loads(json.dumps(scan.to_dict()))


def test_stable_population_raises_no_alert() -> None:
    """No true disparity: with FDR control and a minimum effect, nothing alerts."""
    df = synth_frame(30000, seed=21)
    scan = fairness_scan(df, model=MODEL)
    assert scan.alerts == []
    assert scan.n_tests > 50


def test_min_effect_blocks_trivial_but_significant_gaps() -> None:
    df = synth_frame(40000, seed=5, weak_group=("sex", "F"), weak_mu_pos=2.3)
    strict = subgroup_table(
        df, model=MODEL, attribute="sex", metrics=("sensitivity",), min_effect=0.2
    )
    row = _rows(strict, "sensitivity")["F"]
    assert row.p_adjusted is not None and not row.alert


def test_group_codes_keep_missing_values() -> None:
    codes, labels = group_codes(pd.Series(pd.Categorical(["a", None, "b", "a"], ["a", "b", "c"])))
    assert labels == ["a", "b", MISSING]
    assert list(codes) == [0, 2, 1, 0]


def test_unknown_attribute_or_metric_is_refused(biased: pd.DataFrame) -> None:
    with pytest.raises(ValueError):
        subgroup_table(biased, model=MODEL, attribute="shoe_size")
    with pytest.raises(ValueError):
        subgroup_table(biased, model=MODEL, attribute="sex", metrics=("f1",))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), levels=st.integers(2, 12), n_groups=st.integers(2, 5))
def test_group_and_rest_auc_with_heavy_ties_equal_delong_on_subsets(
    seed: int, levels: int, n_groups: int
) -> None:
    """Scores on a coarse grid (many ties inside and across groups): every group's and every
    complement's AUC and DeLong variance equal delong_auc on that subset of cases."""
    from monitors.stats import delong_auc

    rng = np.random.default_rng(seed)
    df = synth_frame(600, seed=seed % 97)
    df["score"] = np.round(rng.random(len(df)) * (levels - 1)) / (levels - 1)
    df["site"] = pd.Categorical(rng.choice([f"G{i}" for i in range(n_groups)], len(df)))
    table = subgroup_table(
        df, model=MODEL, attribute="site", metrics=("auc",), min_n=2, min_pos=2, min_neg=2
    )
    lab = _lab(df)
    y = lab["label"].astype(int).to_numpy()
    s = lab["score"].to_numpy()
    site = lab["site"].astype(str).to_numpy()
    for group, row in _rows(table, "auc").items():
        for mask, est in ((site == group, row.estimate), (site != group, row.rest)):
            if y[mask].sum() < 2 or (1 - y[mask]).sum() < 2:
                continue
            ref = delong_auc(y[mask], s[mask])
            assert est.value == pytest.approx(ref.auc, rel=1e-9, abs=1e-12)
            assert (est.ci_low, est.ci_high) == pytest.approx(ref.ci, rel=1e-7, abs=1e-9)
