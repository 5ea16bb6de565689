"""Intervals and tests of monitors.stats against independent implementations (statsmodels, scipy).

Every expected value here comes from statsmodels or scipy on the same data, never from the code
under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)
from statsmodels.stats.rates import confint_poisson

from monitors.results import Status
from monitors.stats import (
    benjamini_hochberg,
    newcombe_diff_ci,
    proportion,
    rate_per_study,
    two_proportion_test,
    wilson,
    wilson_arrays,
)

CASES = [(0, 1), (0, 30), (1, 30), (27, 30), (30, 30), (375, 412), (5, 1000), (999, 1000)]


@pytest.mark.parametrize(("k", "n"), CASES)
def test_wilson_matches_statsmodels(k: int, n: int) -> None:
    low, high = wilson(k, n)
    ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert low == pytest.approx(ref_low, abs=1e-12)
    assert high == pytest.approx(ref_high, abs=1e-12)


def test_wilson_at_other_alpha_matches_statsmodels() -> None:
    low, high = wilson(40, 50, alpha=0.10)
    assert (low, high) == pytest.approx(proportion_confint(40, 50, alpha=0.10, method="wilson"))


def test_wilson_is_a_deliberate_choice_not_clopper_pearson() -> None:
    """The exact (Clopper-Pearson) interval is wider; we chose Wilson on purpose (coverage close
    to nominal without the exact method's conservatism), so the two must differ."""
    low, high = wilson(27, 30)
    cp_low, cp_high = proportion_confint(27, 30, alpha=0.05, method="beta")
    assert cp_high - cp_low > high - low + 0.01
    assert low != pytest.approx(cp_low, abs=1e-3)


def test_wilson_arrays_vectorised_equals_scalar() -> None:
    k = np.array([c[0] for c in CASES])
    n = np.array([c[1] for c in CASES])
    lo, hi = wilson_arrays(k, n)
    ref = np.array([proportion_confint(a, b, method="wilson") for a, b in CASES])
    np.testing.assert_allclose(lo, ref[:, 0], atol=1e-12)
    np.testing.assert_allclose(hi, ref[:, 1], atol=1e-12)


def test_wilson_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError):
        wilson(1, 0)
    with pytest.raises(ValueError):
        wilson(5, 4)


def test_proportion_states_are_explicit() -> None:
    undefined = proportion("ppv", 0, 0, min_n=30)
    assert undefined.status is Status.UNDEFINED and undefined.value is None
    assert undefined.display() == "undefined (n=0)"
    small = proportion("sensitivity", 9, 10, min_n=30)
    assert small.status is Status.INSUFFICIENT_DATA
    assert small.value is None and small.ci_low is None and small.n == 10 and small.min_n == 30
    ok = proportion("sensitivity", 27, 30, min_n=30)
    assert ok.status is Status.OK and ok.value == pytest.approx(0.9)
    assert (ok.ci_low, ok.ci_high) == pytest.approx(proportion_confint(27, 30, method="wilson"))
    d = ok.to_dict()
    assert d["status"] == "ok" and d["method"] == "wilson" and d["numerator"] == 27


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 5000), data=st.data())
def test_wilson_properties(n: int, data) -> None:
    k = data.draw(st.integers(0, n))
    low, high = wilson(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    # symmetry: failures' interval mirrors the successes'
    l2, h2 = wilson(n - k, n)
    assert l2 == pytest.approx(1 - high, abs=1e-12) and h2 == pytest.approx(1 - low, abs=1e-12)
    # monotone in k: one more success never lowers either bound
    if k < n:
        l3, h3 = wilson(k + 1, n)
        assert l3 >= low - 1e-15 and h3 >= high - 1e-15


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 200), factor=st.integers(2, 8))
def test_wilson_narrows_with_n(k: int, factor: int) -> None:
    n = 2 * k + 3
    low, high = wilson(k, n)
    low2, high2 = wilson(k * factor, n * factor)
    assert high2 - low2 < high - low


@pytest.mark.parametrize(("count", "n"), [(0, 50), (1, 50), (3, 100), (40, 1000), (500, 1000)])
def test_poisson_rate_matches_statsmodels_exact(count: int, n: int) -> None:
    est = rate_per_study(count, n)
    ref_low, ref_high = confint_poisson(count, n, method="exact-c")
    assert est.value == pytest.approx(count / n)
    assert est.ci_low == pytest.approx(ref_low, abs=1e-12)
    assert est.ci_high == pytest.approx(ref_high, abs=1e-12)
    assert est.method == "poisson-exact"


def test_poisson_rate_bounds_have_the_exact_tail_probabilities() -> None:
    """Garwood: at the upper bound P(X <= k) = alpha/2, at the lower P(X >= k) = alpha/2."""
    est = rate_per_study(7, 200)
    mu_hi, mu_lo = est.ci_high * 200, est.ci_low * 200
    assert sps.poisson.cdf(7, mu_hi) == pytest.approx(0.025, abs=1e-9)
    assert sps.poisson.sf(6, mu_lo) == pytest.approx(0.025, abs=1e-9)


def test_poisson_rate_states() -> None:
    assert rate_per_study(0, 0).status is Status.UNDEFINED
    assert rate_per_study(2, 10, min_n=30).status is Status.INSUFFICIENT_DATA


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"), [(30, 40, 200, 300), (80, 100, 700, 1000), (5, 60, 40, 200)]
)
def test_two_proportion_z_matches_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    t = two_proportion_test(x1, n1, x2, n2)
    assert t.method == "two-proportion-z"
    _, p = proportions_ztest([x1, x2], [n1, n2])
    assert t.p_value == pytest.approx(p, rel=1e-9)
    low, high = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
    assert (t.ci_low, t.ci_high) == pytest.approx((low, high), abs=1e-12)
    assert t.difference == pytest.approx(x1 / n1 - x2 / n2)


def test_small_expected_counts_use_fisher_exact() -> None:
    t = two_proportion_test(3, 8, 280, 300)
    assert t.method == "fisher-exact"
    ref = sps.fisher_exact([[3, 5], [280, 20]]).pvalue
    assert t.p_value == pytest.approx(ref, rel=1e-12)


def test_newcombe_ci_matches_statsmodels() -> None:
    low, high = newcombe_diff_ci(56, 70, 48, 80)
    ref = confint_proportions_2indep(56, 70, 48, 80, method="newcomb", compare="diff")
    assert (low, high) == pytest.approx(ref, abs=1e-12)
    # Newcombe (1998) Table II example (56/70 vs 48/80): published 0.0524 to 0.3339
    assert low == pytest.approx(0.0524, abs=5e-4) and high == pytest.approx(0.3339, abs=5e-4)


@settings(max_examples=40, deadline=None)
@given(p=st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=60))
def test_benjamini_hochberg_matches_statsmodels(p: list[float]) -> None:
    rejected, adjusted = benjamini_hochberg(p, 0.05)
    ref_rej, ref_adj, _, _ = multipletests(p, alpha=0.05, method="fdr_bh")
    np.testing.assert_allclose(adjusted, ref_adj, atol=1e-12)
    assert list(rejected) == list(ref_rej)


def test_benjamini_hochberg_rejects_at_the_boundary() -> None:
    """p_(3) == q * 3 / 3 exactly is rejected (p * m / i rounds to 0.05000000000000001)."""
    rejected, _ = benjamini_hochberg([0.0, 0.0, 0.05], 0.05)
    ref_rej, _, _, _ = multipletests([0.0, 0.0, 0.05], alpha=0.05, method="fdr_bh")
    assert list(rejected) == list(ref_rej) == [True, True, True]


def test_benjamini_hochberg_skips_untested() -> None:
    rejected, adjusted = benjamini_hochberg([0.01, math.nan, 0.04], 0.05)
    ref_rej, ref_adj, _, _ = multipletests([0.01, 0.04], method="fdr_bh")
    assert math.isnan(adjusted[1]) and not rejected[1]
    np.testing.assert_allclose(adjusted[[0, 2]], ref_adj)
    assert list(rejected[[0, 2]]) == list(ref_rej)


@settings(max_examples=80, deadline=None)
@given(count=st.integers(0, 500), n=st.integers(1, 5000))
def test_poisson_rate_properties(count: int, n: int) -> None:
    est = rate_per_study(count, n)
    assert 0.0 <= est.ci_low <= est.value <= est.ci_high
    more = rate_per_study(count + 1, n)
    assert more.ci_low >= est.ci_low and more.ci_high >= est.ci_high


@settings(max_examples=80, deadline=None)
@given(n1=st.integers(1, 400), n2=st.integers(1, 400), data=st.data())
def test_two_proportion_test_properties(n1: int, n2: int, data) -> None:
    x1 = data.draw(st.integers(0, n1))
    x2 = data.draw(st.integers(0, n2))
    t = two_proportion_test(x1, n1, x2, n2)
    u = two_proportion_test(x2, n2, x1, n1)
    assert 0.0 <= t.p_value <= 1.0
    assert -1.0 <= t.ci_low <= t.difference <= t.ci_high <= 1.0
    # swapping the groups mirrors the difference and its CI and keeps the p-value
    assert u.difference == pytest.approx(-t.difference, abs=1e-12)
    assert (u.ci_low, u.ci_high) == pytest.approx((-t.ci_high, -t.ci_low), abs=1e-12)
    assert u.p_value == pytest.approx(t.p_value, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("k", "n"), CASES)
def test_clopper_pearson_matches_statsmodels(k: int, n: int) -> None:
    from monitors.stats import clopper_pearson

    low, high = clopper_pearson(k, n)
    ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="beta")
    assert low == pytest.approx(ref_low, abs=1e-9)
    assert high == pytest.approx(ref_high, abs=1e-9)
    est = proportion("sensitivity", k, n, min_n=1, method="clopper-pearson")
    assert est.method == "clopper-pearson"
    assert (est.ci_low, est.ci_high) == pytest.approx((ref_low, ref_high), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 2000).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_clopper_pearson_contains_the_estimate_and_moves_with_k(kn: tuple[int, int]) -> None:
    from monitors.stats import clopper_pearson

    k, n = kn
    low, high = clopper_pearson(k, n)
    next_low, next_high = clopper_pearson(k + 1, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    assert next_low > low and next_high >= high


def test_unknown_interval_method_is_refused() -> None:
    from monitors.stats import MonitorInputError

    with pytest.raises(MonitorInputError, match="interval method"):
        proportion("sensitivity", 1, 2, min_n=1, method="wald")
