"""Subgroup disparities: each group against the REST of the population, with FDR control.

Why group vs rest (complement) and not group vs overall: the overall figure contains the group,
so a large group can never differ much from it. Each (group, metric) gets the group's Estimate,
the rest's, the gap (group - rest) with a CI and a test:

- proportions (sensitivity, specificity, PPV, NPV): pooled two-proportion z-test, Fisher's exact
  test where an expected cell is below 5; gap CI by Newcombe's hybrid score method;
- AUC: DeLong variances of the group and of the rest (disjoint cases, so independent), z-test.

Benjamini-Hochberg adjusts the p-values across everything tested in one table
(``subgroup_table``) or one scan (``fairness_scan``: all attributes and intersections of a
model). An ``alert`` needs all three: BH-adjusted p <= q, the group's denominator >= min_n, and
the group worse than the rest by at least ``min_effect`` (absolute) -- so that a large hospital
does not alert on trivial gaps and a small group does not alert on noise. Groups below min_n are
shown, as INSUFFICIENT_DATA, and not tested. A missing attribute value is its own group,
"(missing)", so no case silently leaves the table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitors.frame import SUBGROUP_ATTRIBUTES
from monitors.performance import MIN_N, MIN_NEG, MIN_POS, ModelCases, group_counts, model_cases
from monitors.results import (
    Estimate,
    FairnessScan,
    Status,
    SubgroupRow,
    SubgroupTable,
)
from monitors.stats import (
    MonitorInputError,
    benjamini_hochberg,
    estimate_from_auc,
    independent_auc_test,
    proportion,
    two_proportion_test,
)

__all__ = [
    "DEFAULT_METRICS",
    "MIN_EFFECT",
    "MISSING",
    "fairness_scan",
    "group_codes",
    "subgroup_table",
]

DEFAULT_METRICS = ("sensitivity", "specificity", "ppv", "auc")
FAIRNESS_METRICS = ("sensitivity", "specificity", "ppv", "npv", "auc")
MIN_EFFECT = 0.05  # absolute gap (proportion or AUC) below which no alert is raised
MISSING = "(missing)"

# numerator and denominator count names of each proportion metric
_PROP = {
    "sensitivity": ("tp", "pos"),
    "specificity": ("tn", "neg"),
    "ppv": ("tp", "flag_lab"),
    "npv": ("tn", "unflag_lab"),
}


def group_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer code per row and the group labels; missing values form the group "(missing)".
    Only groups present in the rows are returned."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        raw = values.cat.codes.to_numpy().astype("int64")
        cats = [str(c) for c in values.cat.categories]
    else:
        raw, uniq = pd.factorize(values, sort=True)
        raw = raw.astype("int64")
        cats = [str(c) for c in uniq]
    labels = [*cats, MISSING]
    raw = np.where(raw < 0, len(cats), raw)
    present = np.bincount(raw, minlength=len(labels)) > 0
    remap = np.cumsum(present) - 1
    return remap[raw], [lab for lab, p in zip(labels, present, strict=True) if p]


def _intersection_codes(mc: ModelCases, a: str, b: str) -> tuple[np.ndarray, list[str]]:
    ca, la = group_codes(mc.column(a))
    cb, lb = group_codes(mc.column(b))
    combined = ca * len(lb) + cb
    uniq, inv = np.unique(combined, return_inverse=True)
    return inv.astype("int64"), [f"{la[u // len(lb)]} | {lb[u % len(lb)]}" for u in uniq]


# --- AUC of every group and of its complement, from one sort ------------------------------


@dataclass(frozen=True, slots=True)
class _AUCContext:
    """Scores of the labelled cases of one model, sorted once and shared by every attribute.

    DeLong needs, per positive, the count of negatives below it (ties half) and, per negative,
    the count of positives above it. For the whole population these are ``a_pos``/``a_neg``.
    For a group G they are counts against G's cases only, and for its complement R they are
    the population's counts minus G's. The counts against G, as a function of the position in
    the sorted scores, are step functions with a step at each of G's cases, so the complement's
    sums (of the counts, their squares, and their products with ``a``) are sums over G's steps
    using prefix sums of ``a`` and ``a**2``: a group costs O(its size), not O(all cases)."""

    rows: np.ndarray  # row indices (into the model's rows) of the labelled, scored cases
    pos: np.ndarray  # positive scores, ascending
    neg: np.ndarray  # negative scores, ascending
    pos_rows: np.ndarray  # index into ``rows`` of each sorted positive
    neg_rows: np.ndarray
    a_pos: np.ndarray  # negatives below each positive (+ half the ties), all cases
    a_neg: np.ndarray  # positives above each negative (+ half the ties), all cases
    cum_pos: tuple[np.ndarray, np.ndarray]  # prefix sums of a_pos and a_pos**2 (leading 0)
    cum_neg: tuple[np.ndarray, np.ndarray]
    pos_at: tuple[np.ndarray, np.ndarray]  # per positive: negatives < it, negatives <= it
    neg_at: tuple[np.ndarray, np.ndarray]  # per negative: positives < it, positives <= it


def _prefix(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.zeros(1)
    return np.concatenate([z, np.cumsum(a)]), np.concatenate([z, np.cumsum(a * a)])


def _auc_context(mc: ModelCases) -> _AUCContext:
    rows = np.flatnonzero((mc.y >= 0) & ~np.isnan(mc.score))
    y = mc.y[rows] == 1
    s = mc.score[rows]
    pos_idx = np.flatnonzero(y)
    neg_idx = np.flatnonzero(~y)
    po = pos_idx[np.argsort(s[pos_idx], kind="mergesort")]
    no = neg_idx[np.argsort(s[neg_idx], kind="mergesort")]
    pos, neg = s[po], s[no]
    pos_at = (np.searchsorted(neg, pos, "left"), np.searchsorted(neg, pos, "right"))
    neg_at = (np.searchsorted(pos, neg, "left"), np.searchsorted(pos, neg, "right"))
    a_pos = 0.5 * (pos_at[0] + pos_at[1])  # negatives below, ties half
    a_neg = len(pos) - 0.5 * (neg_at[0] + neg_at[1])  # positives above, ties half
    return _AUCContext(
        rows, pos, neg, po, no, a_pos, a_neg, _prefix(a_pos), _prefix(a_neg), pos_at, neg_at
    )


def _below(sorted_ref: np.ndarray, query: np.ndarray) -> np.ndarray:
    """For each value of ``query``: count of ``sorted_ref`` strictly below plus half of those
    equal."""
    lo = np.searchsorted(sorted_ref, query, side="left")
    hi = np.searchsorted(sorted_ref, query, side="right")
    return lo + 0.5 * (hi - lo)


def _step_sums(
    edges: np.ndarray, n_len: int, base: float, coef: float, cum: tuple[np.ndarray, np.ndarray]
) -> tuple[float, float]:
    """With b(i) = base + coef * #{edges <= i} and d = a - b over positions i < n_len:
    (sum of d, sum of d**2). ``edges`` ascending; ``cum``: prefix sums of a and a**2 (leading
    0). b is constant between consecutive edges, so this costs O(edges), not O(n_len)."""
    e = np.concatenate([[0], edges, [n_len]])
    val = base + coef * np.arange(len(e) - 1, dtype="float64")  # b on [e[k], e[k+1])
    ln = np.diff(e).astype("float64")
    wa = np.diff(cum[0][e])
    s_b = float((val * ln).sum())
    s_ab = float((val * wa).sum())
    s_bb = float((val * val * ln).sum())
    return float(cum[0][-1]) - s_b, float(cum[1][-1]) - 2 * s_ab + s_bb


def _from_moments(
    p: int, n: int, s1p: float, s2p: float, s1n: float, s2n: float, n_ref: float, p_ref: float
) -> tuple[float, float, int, int]:
    """DeLong (auc, var, n_pos, n_neg) from sums of placement COUNTS: positives' counts of
    negatives below (divided by the class size ``n_ref``), negatives' counts of positives above
    (divided by ``p_ref``)."""
    if p == 0 or n == 0:
        return math.nan, math.nan, p, n
    auc = s1p / p / n_ref
    if p < 2 or n < 2:
        return auc, math.nan, p, n
    var10 = max(s2p - s1p * s1p / p, 0.0) / (p - 1) / (n_ref * n_ref)
    var01 = max(s2n - s1n * s1n / n, 0.0) / (n - 1) / (p_ref * p_ref)
    return auc, var10 / p + var01 / n, p, n


def _split(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Indices of each group's members, ascending (one stable radix sort of small ints)."""
    small = codes.astype("int16" if n_groups < 32_000 else "int64")
    order = np.argsort(small, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_groups))])
    return [order[bounds[g] : bounds[g + 1]] for g in range(n_groups)]


def _group_and_rest_aucs(
    ctx: _AUCContext, codes: np.ndarray, n_groups: int
) -> tuple[list[tuple[float, float, int, int]], list[tuple[float, float, int, int]]]:
    """(group, rest) AUC results for every group; ``codes`` are per model row."""
    c = codes[ctx.rows]
    idx_p = _split(c[ctx.pos_rows], n_groups)
    idx_n = _split(c[ctx.neg_rows], n_groups)
    n_pos_all, n_neg_all = len(ctx.pos), len(ctx.neg)
    group, rest = [], []
    for g in range(n_groups):
        ip, ineg = idx_p[g], idx_n[g]  # positions among the sorted positives / negatives
        npg, nng = len(ip), len(ineg)
        npr, nnr = n_pos_all - npg, n_neg_all - nng
        # count of G's negatives below the positive at position i (ties half):
        # 0.5 * #{edges_p <= i}, edges_p = where G's negatives fall among the positives
        edges_p = np.sort(np.concatenate([ctx.neg_at[0][ineg], ctx.neg_at[1][ineg]]), kind="stable")
        # count of G's positives above the negative at position j: npg - 0.5 * #{edges_n <= j}
        edges_n = np.sort(np.concatenate([ctx.pos_at[0][ip], ctx.pos_at[1][ip]]), kind="stable")
        gbp = 0.5 * np.searchsorted(edges_p, ip, "right")  # at G's own positives
        gbn = npg - 0.5 * np.searchsorted(edges_n, ineg, "right")  # at G's own negatives
        gdp = ctx.a_pos[ip] - gbp  # the rest's counts at G's cases
        gdn = ctx.a_neg[ineg] - gbn
        group.append(
            _from_moments(
                npg,
                nng,
                float(gbp.sum()),
                float((gbp * gbp).sum()),
                float(gbn.sum()),
                float((gbn * gbn).sum()),
                nng,
                npg,
            )
        )
        # the rest = all positions minus G's: sums of d over all positions, less G's part
        sdp, sdp2 = _step_sums(edges_p, n_pos_all, 0.0, 0.5, ctx.cum_pos)
        sdn, sdn2 = _step_sums(edges_n, n_neg_all, float(npg), -0.5, ctx.cum_neg)
        rest.append(
            _from_moments(
                npr,
                nnr,
                sdp - float(gdp.sum()),
                sdp2 - float((gdp * gdp).sum()),
                sdn - float(gdn.sum()),
                sdn2 - float((gdn * gdn).sum()),
                nnr,
                npr,
            )
        )
    return group, rest


# --- rows before and after BH ------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    attribute: str
    group: str
    metric: str
    estimate: Estimate
    rest: Estimate
    gap: float | None
    lo: float | None
    hi: float | None
    p: float | None
    test: str | None
    reason: str


def _raw_rows(
    mc: ModelCases,
    attribute: str,
    codes: np.ndarray,
    labels: list[str],
    metrics: Sequence[str],
    *,
    ctx: _AUCContext | None,
    min_n: int,
    min_pos: int,
    min_neg: int,
    alpha: float,
) -> list[_Pending]:
    g_n = len(labels)
    cnt = group_counts(mc, codes, g_n)
    cnt["flag_lab"] = cnt["tp"] + cnt["fp"]
    cnt["unflag_lab"] = cnt["tn"] + cnt["fn"]
    tot = {k: int(v.sum()) for k, v in cnt.items()}
    aucs = _group_and_rest_aucs(ctx, codes, g_n) if "auc" in metrics and ctx else None
    rows: list[_Pending] = []
    for i, lab in enumerate(labels):
        for m in metrics:
            if m == "auc":
                assert aucs is not None
                ga, gv, gp, gn = aucs[0][i]
                ra, rv, rp, rn = aucs[1][i]
                kw = {"min_pos": min_pos, "min_neg": min_neg, "alpha": alpha}
                est = estimate_from_auc(ga, gv, gp, gn, **kw)
                rest = estimate_from_auc(ra, rv, rp, rn, **kw)
                if est.status is Status.OK and rest.status is Status.OK:
                    d, lo, hi, p = independent_auc_test(ga, gv, ra, rv, alpha=alpha)
                    rows.append(
                        _Pending(
                            attribute, lab, m, est, rest, d, lo, hi, p, "delong-independent", ""
                        )
                    )
                    continue
            else:
                num, den = _PROP[m]
                x, n = int(cnt[num][i]), int(cnt[den][i])
                xr, nr = tot[num] - x, tot[den] - n
                est = proportion(m, x, n, min_n=min_n, alpha=alpha)
                rest = proportion(m, xr, nr, min_n=min_n, alpha=alpha)
                if est.status is Status.OK and rest.status is Status.OK:
                    t = two_proportion_test(x, n, xr, nr, alpha=alpha)
                    rows.append(
                        _Pending(
                            attribute,
                            lab,
                            m,
                            est,
                            rest,
                            t.difference,
                            t.ci_low,
                            t.ci_high,
                            t.p_value,
                            t.method,
                            "",
                        )
                    )
                    continue
            if est.status is not Status.OK:
                why = f"not tested: group {str(est.status).replace('_', ' ')} (n={est.n})"
            else:
                why = f"not tested: the rest is {str(rest.status).replace('_', ' ')} (n={rest.n})"
            rows.append(_Pending(attribute, lab, m, est, rest, None, None, None, None, None, why))
    return rows


def _finish(
    pending: list[_Pending], adjusted: np.ndarray, *, q: float, min_n: int, min_effect: float
) -> list[SubgroupRow]:
    out = []
    for r, padj in zip(pending, adjusted, strict=True):
        if r.p is None:
            out.append(
                SubgroupRow(
                    r.attribute,
                    r.group,
                    r.metric,
                    r.estimate,
                    r.rest,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    False,
                    r.estimate.status,
                    r.reason,
                )
            )
            continue
        pa = float(padj)
        sig = pa <= q
        big = r.gap is not None and r.gap <= -min_effect
        enough = r.estimate.n >= min_n
        alert = sig and big and enough
        gv, rv = r.estimate.value, r.rest.value
        desc = f"{r.metric} {gv:.3f} vs rest {rv:.3f}, gap {r.gap:+.3f}; BH-adjusted p={pa:.3g}"
        if alert:
            reason = f"ALERT: {desc} <= q={q:g}, gap beyond -{min_effect:g}, n={r.estimate.n}"
        elif not sig:
            reason = f"no alert: {desc} > q={q:g}"
        elif not big:
            reason = f"no alert: {desc} significant but gap not worse than -{min_effect:g}"
        else:
            reason = f"no alert: {desc} but n={r.estimate.n} < {min_n}"
        out.append(
            SubgroupRow(
                r.attribute,
                r.group,
                r.metric,
                r.estimate,
                r.rest,
                r.gap,
                r.lo,
                r.hi,
                r.p,
                pa,
                r.test,
                alert,
                Status.OK,
                reason,
            )
        )
    return out


def _bh(pending: list[_Pending], q: float) -> tuple[np.ndarray, int]:
    p = np.array([np.nan if r.p is None else r.p for r in pending], dtype="float64")
    _, adjusted = benjamini_hochberg(p, q)
    return adjusted, int(np.isfinite(p).sum())


def _check_metrics(metrics: Iterable[str]) -> list[str]:
    ms = list(metrics)
    bad = [m for m in ms if m not in FAIRNESS_METRICS]
    if bad:
        raise MonitorInputError(f"unknown fairness metric(s) {bad}; choose from {FAIRNESS_METRICS}")
    return ms


def _table(
    model: str, attribute: str, labels: list[str], metrics: list[str], rows, *, min_n, q, min_effect
) -> SubgroupTable:
    return SubgroupTable(model, attribute, labels, metrics, min_n, q, min_effect, rows)


def subgroup_table(
    frame: pd.DataFrame,
    *,
    model: str,
    attribute: str,
    metrics: Sequence[str] = DEFAULT_METRICS,
    min_n: int = MIN_N,
    min_pos: int = MIN_POS,
    min_neg: int = MIN_NEG,
    q: float = 0.05,
    min_effect: float = MIN_EFFECT,
    finding: str | None = None,
    alpha: float = 0.05,
) -> SubgroupTable:
    """One attribute's groups vs the rest, BH-adjusted across this table's tests only (use
    ``fairness_scan`` to control the FDR across every attribute of a model)."""
    ms = _check_metrics(metrics)
    mc = model_cases(frame, model=model, finding=finding)
    if attribute not in mc.columns:
        raise MonitorInputError(f"case frame has no column {attribute!r}")
    codes, labels = group_codes(mc.column(attribute))
    ctx = _auc_context(mc) if "auc" in ms else None
    kw = {"ctx": ctx, "min_n": min_n, "min_pos": min_pos, "min_neg": min_neg, "alpha": alpha}
    pending = _raw_rows(mc, attribute, codes, labels, ms, **kw)
    adjusted, _ = _bh(pending, q)
    rows = _finish(pending, adjusted, q=q, min_n=min_n, min_effect=min_effect)
    return _table(model, attribute, labels, ms, rows, min_n=min_n, q=q, min_effect=min_effect)


def fairness_scan(
    frame: pd.DataFrame,
    *,
    model: str,
    attributes: Sequence[str] = tuple(SUBGROUP_ATTRIBUTES),
    intersections: Sequence[tuple[str, str]] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    min_n: int = MIN_N,
    min_pos: int = MIN_POS,
    min_neg: int = MIN_NEG,
    q: float = 0.05,
    min_effect: float = MIN_EFFECT,
    finding: str | None = None,
    alpha: float = 0.05,
) -> FairnessScan:
    """Every attribute (and each requested pair, e.g. ("sex", "age_band"), as "sex x age_band")
    vs the rest, with Benjamini-Hochberg FDR control across all tests of the scan."""
    ms = _check_metrics(metrics)
    mc = model_cases(frame, model=model, finding=finding)
    missing = [
        a
        for a in [*attributes, *(x for pr in intersections or () for x in pr)]
        if a not in mc.columns
    ]
    if missing:
        raise MonitorInputError(f"case frame has no column(s) {missing}")
    parts: list[tuple[str, list[str], list[_Pending]]] = []
    ctx = _auc_context(mc) if "auc" in ms else None  # one sort, shared by every attribute
    kw = {"ctx": ctx, "min_n": min_n, "min_pos": min_pos, "min_neg": min_neg, "alpha": alpha}
    for a in attributes:
        codes, labels = group_codes(mc.column(a))
        parts.append((a, labels, _raw_rows(mc, a, codes, labels, ms, **kw)))
    for a, b in intersections or ():
        codes, labels = _intersection_codes(mc, a, b)
        name = f"{a} x {b}"
        parts.append((name, labels, _raw_rows(mc, name, codes, labels, ms, **kw)))
    everything = [r for _, _, rows in parts for r in rows]
    adjusted, n_tests = _bh(everything, q)
    tables, alerts, at = [], [], 0
    for name, labels, rows in parts:
        done = _finish(rows, adjusted[at : at + len(rows)], q=q, min_n=min_n, min_effect=min_effect)
        at += len(rows)
        tables.append(
            _table(model, name, labels, ms, done, min_n=min_n, q=q, min_effect=min_effect)
        )
        alerts.extend(r for r in done if r.alert)
    return FairnessScan(model, q, min_n, min_effect, n_tests, tables, alerts)
