"""Data drift of a model's inputs and score: a reference window against each later month.

Why not Evidently's default decision: it picks a test by the reference size only. Up to 1,000
reference rows it flags a column at p < 0.05 (so with 8 columns x 12 months a stable feed raises
an alarm nearly every run); above 1,000 rows it compares a distance (normed Wasserstein, Jensen-
Shannon) with a fixed 0.1, which is pure sampling noise for a small current window (one site's
month) and ignores sample size altogether. Here a column drifts in a window only when ALL hold:

1. **significance**: a chi-square test of homogeneity (reference vs window counts; numeric
   columns binned at the reference deciles; sparse cells merged until every expected count is
   >= 5) has p < alpha / m, where m is the number of tests in the whole scan (columns x windows x
   scopes): Bonferroni, so the family-wise false-alarm rate of one scan is <= alpha;
2. **effect size**: the population stability index (PSI, same bins) >= ``min_psi`` (0.1, the
   conventional "moderate shift"), so a huge sample cannot turn a trivial shift into an alarm;
3. **calibrated at the actual n**: PSI above the ``null_quantile`` of its own null distribution,
   simulated by drawing reference and window counts of the actual sizes from the pooled
   proportions (multinomial parametric bootstrap), so sparse cells cannot fool the chi-square;
4. **Evidently agrees**: 1-3 are only a fast screen. Each (scope, window, column) it flags is
   confirmed on the raw values by Evidently's own PSI stat test (the one ``ValueDrift(column,
   method="psi", threshold=t)`` runs), with t calibrated the same way for Evidently's PSI
   (its bins, its zero rule) at the actual n: max(``min_psi``, simulated ``null_quantile``).

Everything is computed from one counts tensor (scope x month x code) built with ``np.bincount``,
so a million rows cost a few hundred milliseconds. Pure functions: no I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

NUMERIC_COLUMNS: tuple[str, ...] = ("age", "score")
CATEGORICAL_COLUMNS: tuple[str, ...] = (
    "sex",
    "site",
    "scanner_manufacturer",
    "scanner_model",
    "modality",
    "patient_class",
    "model_version",  # a vendor update is an input change too
)
DICOM_PREFIX = "dicom_"  # DICOM-derived columns the loader adds from Study.extra
MISSING = "<missing>"


@dataclass(frozen=True, slots=True)
class DriftConfig:
    """The calibration. Defaults give <= 1% family-wise false alarms per model scan."""

    alpha: float = 0.01  # family-wise, split over every test of the scan (Bonferroni)
    min_psi: float = 0.1  # minimum effect size regardless of n
    critical_psi: float = 0.25  # "major shift": severity critical
    null_quantile: float = 0.999
    null_draws: int = 2000
    bins: int = 10  # numeric columns: reference-quantile bins for PSI / chi-square
    fine_bins: int = 200  # numeric columns: fine grid for Wasserstein / KS (Evidently figures)
    min_n: int = 30  # fewer rows in the reference or the window: insufficient data
    min_expected: float = 5.0
    seed: int = 20240601

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d["description"] = (
            "a column drifts in a window when chi-square p < alpha/m (Bonferroni over all m "
            "tests of the scan) AND PSI >= max(min_psi, simulated null quantile of PSI at the "
            "window's and reference's actual sizes) AND Evidently's PSI stat test on the raw "
            "values (ValueDrift method='psi') exceeds max(min_psi, the simulated null quantile "
            "of Evidently's PSI at the same sizes)"
        )
        return d


# --- encoding: every column becomes integer codes over a small alphabet ---------------------


@dataclass(slots=True)
class _Encoded:
    column: str
    kind: str  # categorical / numerical
    codes: np.ndarray  # int64 per row, 0..k-1
    labels: list[str]  # fine labels (categories, or bin left edges as text)
    centers: np.ndarray | None  # numeric: distinct values or fine-bin centres (NaN bin last)
    width: float | None
    exact: bool = True  # counts hold the exact distribution (False: numeric fine bins)


def _encode_categorical(values: pd.Series) -> _Encoded:
    cat = values.astype("category") if not isinstance(values.dtype, pd.CategoricalDtype) else values
    codes = cat.cat.codes.to_numpy().astype(np.int64)
    labels = [str(c) for c in cat.cat.categories]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(labels), codes)
        labels.append(MISSING)
    return _Encoded(str(values.name), "categorical", codes, labels, None, None)


def _encode_numeric(values: pd.Series, fine_bins: int, max_exact: int = 20_000) -> _Encoded:
    """Codes over the column's distinct values when there are at most ``max_exact`` of them (ages,
    scores the feeds give to 4 decimals): every distribution figure from counts is then EXACT
    (KS, Wasserstein, Evidently's rule). Otherwise ``fine_bins`` equal-width bins (approximate)."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    finite = np.isfinite(x)
    if not finite.any():
        return _Encoded(
            str(values.name),
            "numerical",
            np.zeros(len(x), np.int64),
            [MISSING],
            np.array([np.nan]),
            1.0,
        )
    xf = np.where(finite, x, x[finite][0])
    uniq, inverse = np.unique(xf, return_inverse=True)
    exact = len(uniq) <= max_exact
    if exact:
        codes = inverse.astype(np.int64)
        centers = uniq.astype("float64")
        labels = [f"{v:g}" for v in uniq]
        width = float(np.min(np.diff(uniq))) if len(uniq) > 1 else 1.0
    else:
        lo, hi = float(uniq[0]), float(uniq[-1])
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, fine_bins + 1)
        k = len(edges) - 1
        codes = np.clip(np.searchsorted(edges, xf, side="right") - 1, 0, k - 1).astype(np.int64)
        centers = (edges[:-1] + edges[1:]) / 2
        labels = [f"{e:g}" for e in edges[:-1]]
        width = float(edges[1] - edges[0])
    k = len(labels)
    if not finite.all():
        codes = np.where(finite, codes, k)
        labels.append(MISSING)
        centers = np.append(centers, np.nan)
    enc = _Encoded(str(values.name), "numerical", codes, labels, centers, width)
    enc.exact = exact
    return enc


def drift_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns to watch: the standard inputs, the score, DICOM extras."""
    num = [c for c in NUMERIC_COLUMNS if c in frame.columns]
    cat = [c for c in CATEGORICAL_COLUMNS if c in frame.columns]
    for c in frame.columns:
        if c.startswith(DICOM_PREFIX):
            (num if pd.api.types.is_numeric_dtype(frame[c]) else cat).append(c)
    return num, cat


# --- statistics on counts ---------------------------------------------------------------------


def psi(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Population stability index of counts (last axis = bins), with a 0.5 pseudo-count per bin.

    Works on a batch (rows = draws) so that the null distribution is one vectorised call.
    """
    ref = np.asarray(ref, dtype="float64")
    cur = np.asarray(cur, dtype="float64")
    k = ref.shape[-1]
    pr = (ref + 0.5) / (ref.sum(axis=-1, keepdims=True) + 0.5 * k)
    pc = (cur + 0.5) / (cur.sum(axis=-1, keepdims=True) + 0.5 * k)
    return np.sum((pc - pr) * np.log(pc / pr), axis=-1)


def chi2_homogeneity(
    ref: np.ndarray, cur: np.ndarray, min_expected: float = 5.0
) -> tuple[float, int, float]:
    """Chi-square test that two count vectors share one distribution: (statistic, dof, p).

    Cells whose smaller expected count is below ``min_expected`` are merged (rarest first) so
    that the asymptotic p-value is valid.
    """
    ref = np.asarray(ref, dtype="float64")
    cur = np.asarray(cur, dtype="float64")
    keep = (ref + cur) > 0
    ref, cur = ref[keep], cur[keep]
    n_r, n_c = ref.sum(), cur.sum()
    if n_r == 0 or n_c == 0 or len(ref) < 2:
        return 0.0, 0, 1.0
    frac = min(n_r, n_c) / (n_r + n_c)
    order = np.argsort(ref + cur)
    ref, cur = ref[order], cur[order]
    pooled = ref + cur
    # merge the rarest cells into one until it is big enough; the rest stay as they are
    cum = np.cumsum(pooled) * frac
    j = int(np.searchsorted(cum, min_expected))  # cells 0..j merged
    if (pooled[0] * frac) < min_expected and j < len(ref):
        ref = np.concatenate([[ref[: j + 1].sum()], ref[j + 1 :]])
        cur = np.concatenate([[cur[: j + 1].sum()], cur[j + 1 :]])
    elif (pooled[0] * frac) < min_expected:
        return 0.0, 0, 1.0
    if len(ref) < 2:
        return 0.0, 0, 1.0
    table = np.vstack([ref, cur])
    expected = table.sum(axis=0) * (table.sum(axis=1, keepdims=True) / table.sum())
    stat = float(np.sum((table - expected) ** 2 / expected))
    dof = len(ref) - 1
    return stat, dof, float(stats.chi2.sf(stat, dof))


def psi_null_quantile(
    ref: np.ndarray, cur: np.ndarray, *, q: float, draws: int, rng: np.random.Generator
) -> float:
    """The q-quantile of PSI when both samples come from the pooled distribution, at their n."""
    ref = np.asarray(ref, dtype="int64")
    cur = np.asarray(cur, dtype="int64")
    pooled = (ref + cur).astype("float64")
    p = pooled / pooled.sum()
    r = rng.multinomial(int(ref.sum()), p, size=draws)
    c = rng.multinomial(int(cur.sum()), p, size=draws)
    return float(np.quantile(psi(r, c), q))


def _coarse_map(ref_fine: np.ndarray, bins: int, has_missing: bool) -> np.ndarray:
    """Fine numeric bins -> about ``bins`` groups of equal reference mass (missing kept apart)."""
    k = len(ref_fine) - (1 if has_missing else 0)
    body = ref_fine[:k].astype("float64")
    total = body.sum()
    if total <= 0:
        groups = np.zeros(k, np.int64)
    else:
        before = np.cumsum(body) - body  # reference mass strictly below each fine bin
        groups = np.minimum((before / total * bins).astype(np.int64), bins - 1)
    _, groups = np.unique(groups, return_inverse=True)
    if has_missing:
        groups = np.append(groups, groups.max() + 1 if len(groups) else 0)
    return groups


def _evidently_default(enc: _Encoded, ref: np.ndarray, cur: np.ndarray) -> dict[str, Any]:
    """Evidently 0.7.23's default per-column rule (``ValueDrift(column)`` with no method),
    reproduced from counts so that it costs nothing per window (for comparison only: it is not
    calibrated, see the module docstring). Followed step by step from
    ``evidently.legacy.calculations.stattests.registry._get_default_stattest`` and the stat
    tests it picks: missing values dropped first; n = reference rows left; u = distinct values
    in reference + current. n <= 1000: numeric with u > 5 -> KS p (scipy ``ks_2samp``, drift at
    p <= 0.05); else u > 2 -> chi-square goodness of fit of current on reference shares, u <= 2
    -> two-proportion z, drift at p < 0.05. n > 1000: numeric with u > 5 -> Wasserstein distance
    / max(std of reference, 0.001); else Jensen-Shannon distance of the shares; drift at >= 0.1.
    Equal to Evidently's own figures when ``enc.exact`` (checked in the tests); with numeric fine
    bins (> 20,000 distinct values) KS and Wasserstein are approximate (``"exact": false``).
    """
    body = slice(0, len(ref) - (1 if enc.labels[-1] == MISSING else 0))
    r = ref[body].astype("float64")
    c = cur[body].astype("float64")
    n_r, n_c = float(r.sum()), float(c.sum())
    base: dict[str, Any] = {"exact": bool(enc.exact)}
    if n_r == 0 or n_c == 0:  # Evidently refuses an empty column
        return {**base, "test": None, "value": None, "threshold": None, "drift": False}
    present = (r + c) > 0
    n_unique = int(present.sum())
    numeric = enc.kind == "numerical" and enc.centers is not None
    if numeric and n_unique > 5:
        values = enc.centers[body]
        if n_r <= 1000:
            p = float(
                stats.ks_2samp(
                    np.repeat(values, r.astype(np.int64)), np.repeat(values, c.astype(np.int64))
                ).pvalue
            )
            return {**base, "test": "ks", "value": p, "threshold": 0.05, "drift": p <= 0.05}
        mean = float(np.sum(values * r) / n_r)
        sd = float(np.sqrt(np.sum((values - mean) ** 2 * r) / n_r))
        # W1 between the two distributions on the sorted distinct values: sum |F_r - F_c| dx
        # (what scipy's wasserstein_distance computes, at a fraction of its cost here)
        w = float(np.sum(np.abs(np.cumsum(r) / n_r - np.cumsum(c) / n_c)[:-1] * np.diff(values)))
        w /= max(sd, 0.001)
        return {**base, "test": "wasserstein", "value": w, "threshold": 0.1, "drift": w >= 0.1}
    r, c = r[present], c[present]
    if n_r <= 1000:
        if n_unique <= 2:  # two-proportion z-test, Evidently's formula (2 * (1 - cdf))
            if n_unique == 1:
                return {**base, "test": "z", "value": 1.0, "threshold": 0.05, "drift": False}
            p1, p2 = r[1] / n_r, c[1] / n_c
            pp = (p1 * n_r + p2 * n_c) / (n_r + n_c)
            z = (p1 - p2) / np.sqrt(pp * (1 - pp) * (1.0 / n_r + 1.0 / n_c))
            p = float(2 * (1 - stats.norm.cdf(np.abs(z))))
            return {**base, "test": "z", "value": p, "threshold": 0.05, "drift": p < 0.05}
        if (c[r == 0] > 0).any():  # expected 0, observed > 0: scipy's statistic is inf, p = 0
            return {**base, "test": "chisquare", "value": 0.0, "threshold": 0.05, "drift": True}
        p = float(stats.chisquare(c, r * (n_c / n_r)).pvalue)
        return {**base, "test": "chisquare", "value": p, "threshold": 0.05, "drift": p < 0.05}
    js = float(jensenshannon(r / n_r, c / n_c))
    return {**base, "test": "jensenshannon", "value": js, "threshold": 0.1, "drift": js >= 0.1}


# --- the decision of record: Evidently's PSI stat test, at a threshold calibrated for the n ----


def evidently_psi_counts(
    ref: pd.Series, cur: pd.Series, numeric: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The bin counts Evidently 0.7.23's PSI uses (``stattests.utils.get_binned_data``): missing
    dropped; numeric with > 20 distinct reference values -> equal-width Sturges bins over
    reference + current; otherwise one bin per distinct value."""
    if numeric and ref.nunique() > 20:
        bins = np.histogram_bin_edges(np.concatenate([ref.to_numpy(), cur.to_numpy()]), "sturges")
        return np.histogram(ref, bins)[0], np.histogram(cur, bins)[0]
    keys = pd.Index(pd.concat([ref, cur]).unique())
    rc = ref.value_counts().reindex(keys, fill_value=0).to_numpy()
    cc = cur.value_counts().reindex(keys, fill_value=0).to_numpy()
    return rc, cc


def evidently_psi_value(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Evidently's PSI of counts (last axis = bins; batched), its zero-share rule included: a
    zero share becomes 0.0001, or the smallest non-zero share / 1e6 when that is <= 0.0001."""
    pr = np.asarray(ref, "float64") / np.asarray(ref, "float64").sum(axis=-1, keepdims=True)
    pc = np.asarray(cur, "float64") / np.asarray(cur, "float64").sum(axis=-1, keepdims=True)

    def fill(p: np.ndarray) -> np.ndarray:
        m = np.min(np.where(p > 0, p, np.inf), axis=-1, keepdims=True)
        return np.where(p > 0, p, np.where(m <= 0.0001, m / 10**6, 0.0001))

    pr, pc = fill(pr), fill(pc)
    return np.sum((pr - pc) * np.log(pr / pc), axis=-1)


def evidently_psi_confirm(
    ref: pd.Series, cur: pd.Series, *, numeric: bool, config: DriftConfig, rng: np.random.Generator
) -> dict[str, Any]:
    """Run Evidently's own PSI stat test on the raw values of one (scope, window, column).

    ``evidently.legacy.calculations.stattests.psi_stat_test`` is the registered test that
    ``ValueDrift(column, method="psi", threshold=t)`` runs inside a Report (same function, same
    binning; a Report per candidate costs ~0.1 s against ~5 ms). Its threshold is calibrated for
    this n: the ``null_quantile`` of Evidently's PSI when both samples are drawn, at their actual
    sizes, from the pooled bin shares (``null_draws`` multinomial draws), never below ``min_psi``.
    """
    import os

    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently.legacy.calculations.stattests import psi_stat_test
    from evidently.legacy.core import ColumnType

    ref = ref.replace([np.inf, -np.inf], np.nan).dropna()
    cur = cur.replace([np.inf, -np.inf], np.nan).dropna()
    out: dict[str, Any] = {
        "method": "psi",
        "via": "evidently.legacy.calculations.stattests.psi_stat_test (ValueDrift method='psi')",
        "n_ref": len(ref),
        "n_cur": len(cur),
    }
    if ref.empty or cur.empty:
        return {**out, "value": None, "threshold": None, "null_q": None, "drift": False}
    rc, cc = evidently_psi_counts(ref, cur, numeric)
    pooled = (rc + cc).astype("float64")
    p = pooled / pooled.sum()
    r = rng.multinomial(len(ref), p, size=config.null_draws)
    c = rng.multinomial(len(cur), p, size=config.null_draws)
    null_q = float(np.quantile(evidently_psi_value(r, c), config.null_quantile))
    threshold = max(config.min_psi, null_q)
    kind = ColumnType.Numerical if numeric else ColumnType.Categorical
    res = psi_stat_test(ref, cur, kind, threshold)
    return {
        **out,
        "value": float(res.drift_score),
        "threshold": float(res.actual_threshold),
        "null_q": null_q,
        "drift": bool(res.drifted),
    }


def _distance(enc: _Encoded, ref: np.ndarray, cur: np.ndarray) -> tuple[str, float]:
    n_r, n_c = ref.sum(), cur.sum()
    if enc.kind == "numerical" and enc.centers is not None and len(enc.centers) > 1:
        body = slice(0, len(ref) - (1 if enc.labels[-1] == MISSING else 0))
        centers = enc.centers[body]
        fr, fc = np.cumsum(ref[body]) / max(n_r, 1), np.cumsum(cur[body]) / max(n_c, 1)
        mean = float(np.sum(centers * ref[body]) / max(n_r, 1))
        sd = float(np.sqrt(np.sum((centers - mean) ** 2 * ref[body]) / max(n_r, 1)))
        w = float(np.sum(np.abs(fr - fc)[:-1] * np.diff(centers)))
        return "wasserstein_normed", (w / sd if sd > 0 else 0.0)
    js = float(jensenshannon(ref / max(n_r, 1), cur / max(n_c, 1)))
    return "jensenshannon", (js if np.isfinite(js) else 0.0)


def _top_changes(enc: _Encoded, ref: np.ndarray, cur: np.ndarray) -> list[dict[str, Any]]:
    n_r, n_c = max(ref.sum(), 1), max(cur.sum(), 1)
    if enc.kind == "numerical" and enc.centers is not None:
        body = slice(0, len(ref) - (1 if enc.labels[-1] == MISSING else 0))
        c = enc.centers[body]
        rb, cb = ref[body], cur[body]
        out = [
            {
                "value": "mean",
                "ref": float(np.sum(c * rb) / max(rb.sum(), 1)),
                "cur": float(np.sum(c * cb) / max(cb.sum(), 1)),
            }
        ]
        if enc.labels[-1] == MISSING:
            out.append({"value": MISSING, "ref_share": ref[-1] / n_r, "cur_share": cur[-1] / n_c})
        return out
    delta = cur / n_c - ref / n_r
    idx = np.argsort(-np.abs(delta))[:3]
    return [
        {"value": enc.labels[i], "ref_share": float(ref[i] / n_r), "cur_share": float(cur[i] / n_c)}
        for i in idx
        if delta[i] != 0
    ]


@lru_cache(maxsize=256)
def _chi2_ppf(q: float, dof: int) -> float:
    return float(stats.chi2.ppf(q, dof))


def column_drift(
    enc: _Encoded,
    ref: np.ndarray,
    cur: np.ndarray,
    *,
    p_threshold: float,
    config: DriftConfig,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """One column, one window: every figure and the decision (see the module docstring)."""
    n_r, n_c = int(ref.sum()), int(cur.sum())
    out: dict[str, Any] = {
        "column": enc.column,
        "kind": enc.kind,
        "n_ref": n_r,
        "n_cur": n_c,
        "test": "chi2",
        "statistic": None,
        "dof": None,
        "p_value": None,
        "p_threshold": p_threshold,
        "psi": None,
        "psi_threshold": None,
        "psi_null_q": None,
        "distance_name": None,
        "distance": None,
        "evidently_default": None,
        "screened": False,  # our fast screen (chi-square + PSI) flagged it
        "evidently_psi": None,  # Evidently's PSI test on the raw values (screened ones only)
        "drifted": False,
        "status": "ok",
        "top_changes": [],
    }
    if n_r < config.min_n or n_c < config.min_n:
        out["status"] = "insufficient_data"
        return out
    if enc.kind == "numerical":
        has_missing = enc.labels[-1] == MISSING
        groups = _coarse_map(ref, config.bins, has_missing)
        ref2 = np.bincount(groups, weights=ref, minlength=groups.max() + 1)
        cur2 = np.bincount(groups, weights=cur, minlength=groups.max() + 1)
    else:
        ref2, cur2 = ref.astype("float64"), cur.astype("float64")
    used = (ref2 + cur2) > 0
    ref2, cur2 = ref2[used], cur2[used]
    stat, dof, p = chi2_homogeneity(ref2, cur2, config.min_expected)
    value = float(psi(ref2, cur2)) if len(ref2) > 1 else 0.0
    # asymptotic null quantile: n_eff * PSI ~ chi2(k-1) (PSI is Jeffreys' divergence)
    n_eff = 1.0 / (1.0 / n_r + 1.0 / n_c)
    null_q = _chi2_ppf(config.null_quantile, max(len(ref2) - 1, 1)) / n_eff
    candidate = p < p_threshold and value >= config.min_psi
    if candidate:  # simulate only where it can change the decision (keeps scans fast)
        null_q = psi_null_quantile(
            ref2.astype("int64"),
            cur2.astype("int64"),
            q=config.null_quantile,
            draws=config.null_draws,
            rng=rng,
        )
    threshold = max(config.min_psi, null_q)
    name, dist = _distance(enc, ref, cur)
    out.update(
        statistic=stat,
        dof=dof,
        p_value=p,
        psi=value,
        psi_threshold=threshold,
        psi_null_q=null_q,
        distance_name=name,
        distance=dist,
        evidently_default=_evidently_default(enc, ref, cur),
        screened=bool(candidate and value >= threshold),
        drifted=bool(candidate and value >= threshold),  # drift_scan: AND Evidently's PSI test
        top_changes=_top_changes(enc, ref, cur),
    )
    return out


# --- the scan ---------------------------------------------------------------------------------


def month_windows(times: pd.Series) -> pd.Series:
    """'YYYY-MM' of each UTC timestamp (missing stays missing)."""
    t = pd.to_datetime(times, utc=True)
    code = (t.dt.year * 12 + t.dt.month - 1).astype("Int64")  # strftime is ~50x slower
    uniq = sorted(int(c) for c in code.dropna().unique())
    labels = {c: f"{c // 12:04d}-{c % 12 + 1:02d}" for c in uniq}
    cat = pd.Categorical.from_codes(
        code.map({c: i for i, c in enumerate(uniq)}).fillna(-1).astype("int64").to_numpy(),
        categories=[labels[c] for c in uniq],
    )
    return pd.Series(cat, index=times.index).astype("string")


def drift_scan(
    frame: pd.DataFrame,
    *,
    windows: pd.Series,
    reference: list[str],
    by_site: bool = True,
    columns: tuple[list[str], list[str]] | None = None,
    config: DriftConfig | None = None,
) -> dict[str, Any]:
    """Drift of every watched column, reference months vs each later month, overall and per site.

    ``frame`` holds ONE model's rows; ``windows`` labels each row's month ('YYYY-MM', aligned to
    ``frame``); ``reference`` names the reference months. Returns the DriftBlock of SCHEMA.md.
    """
    config = config or DriftConfig()
    rng = np.random.default_rng(config.seed)
    num, cat = columns if columns is not None else drift_columns(frame)
    win = pd.Series(windows, index=frame.index).astype("string")
    labels = sorted(x for x in win.dropna().unique())
    ref_set = [w for w in labels if w in set(reference)]
    current = [w for w in labels if w not in set(reference)]
    block: dict[str, Any] = {
        "method": config.describe(),
        "columns": [*num, *cat],
        "reference_windows": ref_set,
        "scopes": [],
    }
    if not ref_set or not current or frame.empty:
        block["note"] = "no reference or no later window: nothing to compare"
        return block

    w_index = {w: i for i, w in enumerate(labels)}
    wcode = win.map(w_index).astype("Int64").fillna(-1).to_numpy(dtype=np.int64)
    valid = wcode >= 0
    if by_site and "site" in frame.columns:
        site_cat = frame["site"].astype("category")
        sites = [str(s) for s in site_cat.cat.categories]
        scode = site_cat.cat.codes.to_numpy().astype(np.int64)
        if (scode < 0).any():
            sites.append(MISSING)
            scode = np.where(scode < 0, len(sites) - 1, scode)
    else:
        sites, scode = ["*"], np.zeros(len(frame), np.int64)
    n_s, n_w = len(sites), len(labels)
    ref_idx = np.array([w_index[w] for w in ref_set])
    cur_idx = [w_index[w] for w in current]

    encoded = [_encode_numeric(frame[c], config.fine_bins) for c in num] + [
        _encode_categorical(frame[c]) for c in cat
    ]
    scopes: list[tuple[str, int | None]] = [("", None)]
    if by_site and "site" in frame.columns:
        scopes += [(f"site={s}", i) for i, s in enumerate(sites)]
    tests_per_scope = {
        name: sum(1 for e in encoded if not (si is not None and e.column == "site"))
        for name, si in scopes
    }
    m = max(1, sum(tests_per_scope.values()) * len(current))
    p_threshold = config.alpha / m

    tensors: dict[str, np.ndarray] = {}
    for enc in encoded:
        k = len(enc.labels)
        flat = (scode[valid] * n_w + wcode[valid]) * k + enc.codes[valid]
        tensors[enc.column] = np.bincount(flat, minlength=n_s * n_w * k).reshape(n_s, n_w, k)

    overall = {c: t.sum(axis=0) for c, t in tensors.items()}
    is_ref = np.isin(wcode, ref_idx)
    for scope_name, si in scopes:
        scope_out: dict[str, Any] = {"subgroup": scope_name, "windows": []}
        for wi, wname in zip(cur_idx, current, strict=True):
            cols_out = []
            for enc in encoded:
                if si is not None and enc.column == "site":
                    continue
                t = tensors[enc.column]
                tt = overall[enc.column] if si is None else t[si]
                ref = tt[ref_idx].sum(axis=0)
                cur = tt[wi]
                col = column_drift(enc, ref, cur, p_threshold=p_threshold, config=config, rng=rng)
                if col["screened"]:  # the decision of record: Evidently's PSI test must agree
                    in_scope = valid if si is None else valid & (scode == si)
                    raw = frame[enc.column]
                    if enc.kind == "numerical":
                        raw = pd.to_numeric(raw, errors="coerce").astype("float64")
                    else:
                        raw = raw.astype("object").where(raw.notna(), None)
                    ev = evidently_psi_confirm(
                        raw[in_scope & is_ref],
                        raw[in_scope & (wcode == wi)],
                        numeric=enc.kind == "numerical",
                        config=config,
                        rng=rng,
                    )
                    col["evidently_psi"] = ev
                    col["drifted"] = bool(ev["drift"])
                cols_out.append(col)
            n_ref = max((c["n_ref"] for c in cols_out), default=0)
            n_cur = max((c["n_cur"] for c in cols_out), default=0)
            scope_out["windows"].append(
                {
                    "window": wname,
                    "n_ref": n_ref,
                    "n_cur": n_cur,
                    "drifted": any(c["drifted"] for c in cols_out),
                    "drifted_columns": [c["column"] for c in cols_out if c["drifted"]],
                    "columns": cols_out,
                }
            )
        block["scopes"].append(scope_out)
    block["n_tests"] = m
    return block


def drifted_findings(block: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten a DriftBlock into one row per (scope, column) that drifted in any window."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for scope in block.get("scopes", []):
        for w in scope["windows"]:
            for c in w["columns"]:
                if not c["drifted"]:
                    continue
                key = (scope["subgroup"], c["column"])
                row = out.setdefault(
                    key,
                    {"subgroup": scope["subgroup"], "column": c["column"], "windows": []},
                )
                row["windows"].append(w["window"])
                row["latest"] = {**c, "window": w["window"]}
    return list(out.values())
