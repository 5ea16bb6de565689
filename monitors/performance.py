"""Model performance over the case frame: summary vs baseline, trends, threshold trade-offs.

Every number is an Estimate with its n and 95% CI (Wilson for proportions, DeLong for AUC, exact
Poisson for false positives per study). Cases enter a metric only where its denominator is
known: accuracy needs a 1/0 reference label (uncertain and pending reads are excluded), the flag
rate needs only the AI call. Everything is counted with numpy bincounts over integer group codes,
so a 1M-row frame costs a few passes, not a Python loop per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from monitors.results import (
    Comparison,
    Estimate,
    PairedAUC,
    PerformanceSummary,
    PeriodPerformance,
    Status,
    ThresholdPoint,
    to_jsonable,
)
from monitors.stats import (
    MonitorInputError,
    auc_vs_reference,
    delong_auc,
    estimate_from_auc,
    grouped_delong,
    paired_delong,
    proportion,
    rate_per_study,
    sorted_auc_var,
    two_proportion_test,
    wilson,
)

__all__ = [
    "MIN_N",
    "MIN_NEG",
    "MIN_POS",
    "PROPORTION_METRICS",
    "Baseline",
    "ModelCases",
    "group_counts",
    "model_cases",
    "performance_summary",
    "performance_trend",
    "threshold_analysis",
]

# Stated minimum denominators: below these an estimate is INSUFFICIENT_DATA. 30 keeps a Wilson
# 95% CI of a proportion near 0.9 narrower than about +/-0.12; DeLong's normal approximation
# needs a fair number of each class.
MIN_N = 30
MIN_POS = 20
MIN_NEG = 20

PROPORTION_METRICS = ("sensitivity", "specificity", "ppv", "npv", "flag_rate")
ALL_METRICS = (*PROPORTION_METRICS, "fp_per_study", "auc")


@dataclass(frozen=True, slots=True)
class Baseline:
    """The model card's acceptance figures, as plain numbers. Class sizes (n_positive /
    n_negative) let the comparison account for the baseline's own uncertainty; without them
    the baseline is taken as a fixed number (``n`` alone does not say how many were positive)."""

    sensitivity: float | None = None
    specificity: float | None = None
    auc: float | None = None
    ppv: float | None = None
    n: int | None = None
    n_positive: int | None = None
    n_negative: int | None = None

    def to_dict(self) -> dict:
        return to_jsonable(self)


@dataclass(frozen=True, slots=True)
class ModelCases:
    """One model's rows as arrays: the few columns the metrics need, decoded once. ``column``
    gives any other column of the same rows without copying the whole frame."""

    source: pd.DataFrame
    rows: np.ndarray | None  # boolean row mask into ``source``; None = every row
    y: np.ndarray  # int8: 1 / 0 reference label, -1 unknown (uncertain or pending)
    call: np.ndarray  # int8: 1 / 0 AI call, -1 unknown
    score: np.ndarray  # float64, NaN when missing
    final_read: np.ndarray  # bool: a final read exists (label_state not pending/missing)
    study: np.ndarray  # int64 codes of study_id, 0..n_studies-1
    n_studies: int
    multi_finding: bool  # several rows per study: false positives are summed per study

    def column(self, name: str) -> pd.Series:
        col = self.source[name]
        return col if self.rows is None else col[self.rows]

    @property
    def columns(self) -> pd.Index:
        return self.source.columns


def model_cases(frame: pd.DataFrame, *, model: str, finding: str | None = None) -> ModelCases:
    """Select one model (and finding) and decode the columns the metrics use."""
    mask = (frame["model"] == model).to_numpy(dtype=bool, na_value=False)
    if finding is not None:
        mask &= (frame["finding"] == finding).to_numpy(dtype=bool, na_value=False)
    rows = None if mask.all() else mask

    def col(name: str) -> pd.Series:
        c = frame[name]
        return c if rows is None else c[rows]

    y = col("label").to_numpy(dtype="float64", na_value=-1.0).astype("int8")
    call = col("ai_call").astype("float64").to_numpy(dtype="float64", na_value=-1.0)
    score = col("score").to_numpy(dtype="float64", na_value=np.nan)
    state = col("label_state")
    final_read = (state.notna() & (state != "pending")).to_numpy(dtype=bool, na_value=False)
    study, uniq = pd.factorize(col("study_id"))
    multi = len(study) > 0 and col("finding").nunique(dropna=True) > 1
    return ModelCases(
        frame,
        rows,
        y,
        call.astype("int8"),
        score,
        final_read,
        study.astype("int64"),
        len(uniq),
        multi,
    )


# --- counting ------------------------------------------------------------------------------


def group_counts(mc: ModelCases, codes: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """Per-group confusion counts from ONE bincount over (group, label, call, final read)
    cells; rows with code < 0 are left out."""
    keep = codes >= 0
    every = bool(keep.all())
    c = codes if every else codes[keep]
    y = mc.y if every else mc.y[keep]
    call = mc.call if every else mc.call[keep]
    fr = mc.final_read if every else mc.final_read[keep]
    # cell = ((y + 1) * 3 + (call + 1)) * 2 + final_read: 18 cells per group
    cell = ((y.astype("int64") + 1) * 3 + (call.astype("int64") + 1)) * 2 + fr
    t = np.bincount(c * 18 + cell, minlength=n_groups * 18)[: n_groups * 18]
    t = t.reshape(n_groups, 3, 3, 2)  # [group, y+1, call+1, final_read]
    yc = t.sum(axis=3)
    out = {
        "results": t.sum(axis=(1, 2, 3)),
        "final_read": t[:, :, :, 1].sum(axis=(1, 2)),
        "called": yc[:, :, 1:].sum(axis=(1, 2)),
        "flagged": yc[:, :, 2].sum(axis=1),
        "labelled": yc[:, 1:, :].sum(axis=(1, 2)),
        "tp": yc[:, 2, 2],
        "fn": yc[:, 2, 1],
        "tn": yc[:, 1, 1],
        "fp": yc[:, 1, 2],
    }
    out = {k: v.astype("int64") for k, v in out.items()}
    out["pos"] = out["tp"] + out["fn"]
    out["neg"] = out["tn"] + out["fp"]
    if mc.multi_finding:  # false positives per labelled study, not per row
        lab = y >= 0
        st = (mc.study if every else mc.study[keep])[lab]
        base = mc.n_studies + 1
        key = np.unique(c[lab] * base + st)
        out["studies"] = np.bincount(key // base, minlength=n_groups)[:n_groups]
    else:
        out["studies"] = out["labelled"]
    return out


def _estimates(
    cnt: dict[str, np.ndarray], i: int, *, min_n: int, alpha: float
) -> dict[str, Estimate]:
    def g(k: str) -> int:
        return int(cnt[k][i])

    return {
        "sensitivity": proportion("sensitivity", g("tp"), g("pos"), min_n=min_n, alpha=alpha),
        "specificity": proportion("specificity", g("tn"), g("neg"), min_n=min_n, alpha=alpha),
        "ppv": proportion("ppv", g("tp"), g("tp") + g("fp"), min_n=min_n, alpha=alpha),
        "npv": proportion("npv", g("tn"), g("tn") + g("fn"), min_n=min_n, alpha=alpha),
        "flag_rate": proportion("flag_rate", g("flagged"), g("called"), min_n=min_n, alpha=alpha),
        "fp_per_study": rate_per_study(g("fp"), g("studies"), min_n=min_n, alpha=alpha),
    }


def _auc_inputs(mc: ModelCases) -> np.ndarray:
    """Rows usable for AUC: a 1/0 label and a score."""
    return (mc.y >= 0) & ~np.isnan(mc.score)


# --- summary ---------------------------------------------------------------------------------


def _compare_proportion(
    metric: str, est: Estimate, base: float, base_n: int | None, alpha: float, note: str = ""
) -> Comparison:
    if est.status is not Status.OK or est.numerator is None:
        return Comparison(
            metric,
            None,
            None,
            None,
            est.n,
            base,
            base_n,
            None,
            None,
            None,
            None,
            "not compared: " + str(est.status),
            est.status,
            False,
        )
    x, n = est.numerator, est.n
    if base_n:
        bx = round(base * base_n)
        t = two_proportion_test(x, n, bx, base_n, alpha=alpha)
        d, lo, hi, p, method = t.difference, t.ci_low, t.ci_high, t.p_value, t.method + note
    else:  # the baseline as a fixed number: exact binomial test, CI from the Wilson interval
        d = x / n - base
        wl, wh = wilson(x, n, alpha=alpha)
        lo, hi = wl - base, wh - base
        p = float(sps.binomtest(x, n, p=min(max(base, 0.0), 1.0)).pvalue)
        method = "binomial-exact vs fixed baseline"
    return Comparison(
        metric,
        est.value,
        est.ci_low,
        est.ci_high,
        n,
        base,
        base_n,
        d,
        lo,
        hi,
        p,
        method,
        Status.OK,
        hi < 0,
    )


def _baseline_sizes(
    baseline: Baseline, metrics: dict[str, Estimate]
) -> tuple[dict[str, int | None], str]:
    """The baseline's denominators per metric. Given class sizes are used as they are. With
    only the total ``n`` they are estimated as n x the production share (prevalence, flag rate
    among labelled cases): acceptance sets are often enriched with positives, so this tends to
    UNDER-state the baseline's positives and makes the test more cautious, not less."""
    if baseline.n_positive and baseline.n_negative:
        pos, neg = int(baseline.n_positive), int(baseline.n_negative)
        return {"sensitivity": pos, "specificity": neg, "ppv": None}, ""
    n = int(baseline.n or 0)
    n_pos, n_neg = metrics["sensitivity"].n, metrics["specificity"].n
    if n < 2 or n_pos == 0 or n_neg == 0:
        return {"sensitivity": None, "specificity": None, "ppv": None}, ""
    pos = min(max(1, round(n * n_pos / (n_pos + n_neg))), n - 1)
    flagged = round(n * metrics["ppv"].n / (n_pos + n_neg)) or None
    note = " (baseline class sizes estimated as n x production prevalence)"
    return {"sensitivity": pos, "specificity": n - pos, "ppv": flagged}, note


def _vs_baseline(
    metrics: dict[str, Estimate], auc_var: float | None, baseline: Baseline, alpha: float
) -> list[Comparison]:
    out: list[Comparison] = []
    sizes, note = _baseline_sizes(baseline, metrics)
    for m in ("sensitivity", "specificity", "ppv"):
        b = getattr(baseline, m)
        if b is not None:
            out.append(_compare_proportion(m, metrics[m], float(b), sizes[m], alpha, note))
    if baseline.auc is not None:
        est = metrics["auc"]
        b = float(baseline.auc)
        n_pos, n_neg = sizes["sensitivity"], sizes["specificity"]
        base_n = n_pos + n_neg if n_pos and n_neg else None
        if est.status is Status.OK and est.value is not None and auc_var is not None:
            d, lo, hi, p, method = auc_vs_reference(
                est.value,
                auc_var,
                b,
                ref_n_pos=n_pos,
                ref_n_neg=n_neg,
                alpha=alpha,
            )
            method += note if base_n else ""
            out.append(
                Comparison(
                    "auc",
                    est.value,
                    est.ci_low,
                    est.ci_high,
                    est.n,
                    b,
                    base_n,
                    d,
                    lo,
                    hi,
                    p,
                    method,
                    Status.OK,
                    hi < 0,
                )
            )
        else:
            out.append(
                Comparison(
                    "auc",
                    None,
                    None,
                    None,
                    est.n,
                    b,
                    base_n,
                    None,
                    None,
                    None,
                    None,
                    "not compared: " + str(est.status),
                    est.status,
                    False,
                )
            )
    return out


def _paired_vs_rescored(mc: ModelCases, rescored: pd.DataFrame, alpha: float) -> PairedAUC:
    """Paired DeLong of production vs re-scored scores on the labelled cases that have both."""
    need = {"study_id", "rescore_score"}
    if missing := need - set(rescored.columns):
        raise MonitorInputError(f"rescored frame lacks columns: {', '.join(sorted(missing))}")
    ok = _auc_inputs(mc)
    left = pd.DataFrame(
        {"study_id": mc.column("study_id").to_numpy()[ok], "y": mc.y[ok], "a": mc.score[ok]}
    )
    right = rescored[["study_id", "rescore_score"]].dropna().drop_duplicates("study_id")
    both = left.merge(right, on="study_id", how="inner")
    return paired_delong(
        both["y"].to_numpy() == 1,
        both["a"].to_numpy(),
        both["rescore_score"].to_numpy(dtype="float64"),
        alpha=alpha,
    )


def performance_summary(
    frame: pd.DataFrame,
    *,
    model: str,
    finding: str | None = None,
    min_n: int = MIN_N,
    min_pos: int = MIN_POS,
    min_neg: int = MIN_NEG,
    baseline: Baseline | None = None,
    rescored: pd.DataFrame | None = None,
    alpha: float = 0.05,
) -> PerformanceSummary:
    """Performance of ``model`` over the whole frame given (the caller picks the window).

    ``baseline``: the model card's figures; each present metric gets a Comparison (difference
    with CI and p). ``rescored``: a frame with ``study_id`` and ``rescore_score`` (re-run scores
    of the same model); where both scores exist on labelled cases, a paired DeLong test.
    """
    mc = model_cases(frame, model=model, finding=finding)
    n = len(mc.y)
    codes = np.zeros(n, dtype="int64")
    cnt = group_counts(mc, codes, 1)
    metrics = _estimates(cnt, 0, min_n=min_n, alpha=alpha)
    ok = _auc_inputs(mc)
    y_auc, s_auc = mc.y[ok] == 1, mc.score[ok]
    auc_var: float | None = None
    npos, nneg = int(y_auc.sum()), int((~y_auc).sum())
    if npos and nneg:
        r = delong_auc(y_auc, s_auc, alpha=alpha)
        auc_var = r.variance
        metrics["auc"] = estimate_from_auc(
            r.auc,
            np.nan if r.variance is None else r.variance,
            npos,
            nneg,
            min_pos=min_pos,
            min_neg=min_neg,
            alpha=alpha,
        )
    else:
        metrics["auc"] = estimate_from_auc(
            np.nan, np.nan, npos, nneg, min_pos=min_pos, min_neg=min_neg, alpha=alpha
        )
    coverage = proportion("label_coverage", int(cnt["final_read"][0]), n, min_n=min_n, alpha=alpha)
    state = mc.column("label_state")
    times = mc.column("exam_at")
    versions = sorted(str(v) for v in mc.column("model_version").dropna().unique())
    return PerformanceSummary(
        model=model,
        finding=finding,
        period_start=times.min() if times.notna().any() else None,
        period_end=times.max() if times.notna().any() else None,
        n_results=n,
        n_studies=mc.n_studies,
        n_labelled=int(cnt["labelled"][0]),
        n_positive=int((mc.y == 1).sum()),
        n_negative=int((mc.y == 0).sum()),
        n_uncertain=int((state == "uncertain").sum()),
        n_pending=n - int(cnt["final_read"][0]),
        versions=versions,
        metrics=metrics,
        label_coverage=coverage,
        vs_baseline=_vs_baseline(metrics, auc_var, baseline, alpha) if baseline else [],
        paired=_paired_vs_rescored(mc, rescored, alpha) if rescored is not None else None,
        min_n=min_n,
        min_pos=min_pos,
        min_neg=min_neg,
    )


# --- trends ----------------------------------------------------------------------------------


def _period_codes(
    times: pd.Series, freq: str
) -> tuple[np.ndarray, list[str], list[pd.Timestamp], list[pd.Timestamp]]:
    """Integer period per row (-1 where the time is missing), and every period's label, start
    and end (exclusive) from the first to the last period, empty periods included."""
    t = pd.to_datetime(times, utc=True)
    valid = t.notna().to_numpy()
    if not valid.any():
        return np.full(len(t), -1, dtype="int64"), [], [], []
    if freq == "M":
        raw = (t.dt.year * 12 + t.dt.month - 1).to_numpy(dtype="float64", na_value=np.nan)
    elif freq == "W":  # ISO weeks, Monday-based: 1970-01-05 was a Monday
        days = (t - pd.Timestamp("1970-01-05", tz="UTC")).dt.days
        raw = (days // 7).to_numpy(dtype="float64", na_value=np.nan)
    else:
        raise MonitorInputError(f"freq must be 'W' or 'M', not {freq!r}")
    lo = int(np.nanmin(raw))
    hi = int(np.nanmax(raw))
    codes = np.where(valid, np.nan_to_num(raw, nan=lo) - lo, -1).astype("int64")
    labels, starts, ends = [], [], []
    for p in range(lo, hi + 1):
        if freq == "M":
            s = pd.Timestamp(year=p // 12, month=p % 12 + 1, day=1, tz="UTC")
            e = s + pd.offsets.MonthBegin(1)
            labels.append(f"{s.year:04d}-{s.month:02d}")
        else:
            s = pd.Timestamp("1970-01-05", tz="UTC") + pd.Timedelta(days=7 * p)
            e = s + pd.Timedelta(days=7)
            iso = s.isocalendar()
            labels.append(f"{iso[0]:04d}-W{iso[1]:02d}")
        starts.append(s)
        ends.append(e)
    return codes, labels, starts, ends


def _window_auc(
    ss: np.ndarray, yy: np.ndarray, mask: np.ndarray, *, min_pos: int, min_neg: int, alpha: float
) -> Estimate:
    """AUC of the cases in ``mask`` from score-sorted arrays (a subset stays sorted)."""
    y = yy[mask]
    npos = int(y.sum())
    nneg = len(y) - npos
    if npos == 0 or nneg == 0:
        return estimate_from_auc(
            np.nan, np.nan, npos, nneg, min_pos=min_pos, min_neg=min_neg, alpha=alpha
        )
    auc, var = sorted_auc_var(ss[mask], y)
    return estimate_from_auc(
        auc,
        np.nan if var is None else var,
        npos,
        nneg,
        min_pos=min_pos,
        min_neg=min_neg,
        alpha=alpha,
    )


def performance_trend(
    frame: pd.DataFrame,
    *,
    model: str,
    freq: str = "M",
    rolling: int | None = None,
    finding: str | None = None,
    time_column: str = "exam_at",
    min_n: int = MIN_N,
    min_pos: int = MIN_POS,
    min_neg: int = MIN_NEG,
    include_auc: bool = True,
    alpha: float = 0.05,
) -> list[PeriodPerformance]:
    """Performance per calendar week (``freq="W"``, ISO weeks) or month (``"M"``) of
    ``time_column``, oldest first, empty periods included (their metrics UNDEFINED). With
    ``rolling=k`` the result is instead one window of k consecutive periods ending at each
    period from the k-th on (kind "rolling"), e.g. freq="W", rolling=4: 4-week rolling."""
    mc = model_cases(frame, model=model, finding=finding)
    codes, labels, starts, ends = _period_codes(mc.column(time_column), freq)
    n_p = len(labels)
    if n_p == 0:
        return []
    cnt = group_counts(mc, codes, n_p)
    ok = _auc_inputs(mc) & (codes >= 0)
    y_auc, s_auc, c_auc = mc.y[ok] == 1, mc.score[ok], codes[ok]
    out: list[PeriodPerformance] = []
    if rolling is None:
        if include_auc:
            auc, var, npos, nneg = grouped_delong(y_auc, s_auc, c_auc, n_p)
        for i in range(n_p):
            m = _estimates(cnt, i, min_n=min_n, alpha=alpha)
            if include_auc:
                m["auc"] = estimate_from_auc(
                    auc[i],
                    var[i],
                    int(npos[i]),
                    int(nneg[i]),
                    min_pos=min_pos,
                    min_neg=min_neg,
                    alpha=alpha,
                )
            cov = proportion(
                "label_coverage",
                int(cnt["final_read"][i]),
                int(cnt["results"][i]),
                min_n=min_n,
                alpha=alpha,
            )
            out.append(
                PeriodPerformance(
                    labels[i],
                    starts[i],
                    ends[i],
                    freq,
                    int(cnt["results"][i]),
                    int(cnt["labelled"][i]),
                    m,
                    cov,
                )
            )
        return out
    k = int(rolling)
    if k < 1:
        raise MonitorInputError("rolling must be a positive number of periods")
    csum = {key: np.concatenate([[0], np.cumsum(v)]) for key, v in cnt.items()}
    by_score = np.argsort(s_auc, kind="mergesort")  # sort once; each window is a subset
    ss, yy, cs = s_auc[by_score], y_auc[by_score], c_auc[by_score]
    unit = "W" if freq == "W" else "M"
    for end in range(k - 1, n_p):
        start = end - k + 1
        wc = {key: np.array([v[end + 1] - v[start]]) for key, v in csum.items()}
        if mc.multi_finding:
            wmask = (codes >= start) & (codes <= end)
            wc["studies"] = np.array([len(np.unique(mc.study[wmask & (mc.y >= 0)]))])
        m = _estimates(wc, 0, min_n=min_n, alpha=alpha)
        if include_auc:
            mask = (cs >= start) & (cs <= end)
            m["auc"] = _window_auc(ss, yy, mask, min_pos=min_pos, min_neg=min_neg, alpha=alpha)
        cov = proportion(
            "label_coverage",
            int(wc["final_read"][0]),
            int(wc["results"][0]),
            min_n=min_n,
            alpha=alpha,
        )
        out.append(
            PeriodPerformance(
                f"rolling {k}{unit} to {labels[end]}",
                starts[start],
                ends[end],
                "rolling",
                int(wc["results"][0]),
                int(wc["labelled"][0]),
                m,
                cov,
            )
        )
    return out


# --- threshold analysis ----------------------------------------------------------------------


def threshold_analysis(
    frame: pd.DataFrame,
    *,
    model: str,
    thresholds,
    finding: str | None = None,
    min_n: int = MIN_N,
    alpha: float = 0.05,
) -> list[ThresholdPoint]:
    """Sensitivity, specificity, PPV, flag rate and false positives per study if the operating
    threshold were each candidate (a case is called positive when score >= threshold), on the
    labelled cases that have a score. The current operating threshold (the most common value of
    the frame's ``threshold`` column) is marked, so the trade-off is seen before a change."""
    mc = model_cases(frame, model=model, finding=finding)
    has_score = ~np.isnan(mc.score)
    lab = (mc.y >= 0) & has_score
    pos = np.sort(mc.score[lab & (mc.y == 1)])
    neg = np.sort(mc.score[lab & (mc.y == 0)])
    alls = np.sort(mc.score[has_score])
    ts = np.asarray(sorted({float(t) for t in thresholds}), dtype="float64")
    tp = len(pos) - np.searchsorted(pos, ts, side="left")
    fp = len(neg) - np.searchsorted(neg, ts, side="left")
    flagged = len(alls) - np.searchsorted(alls, ts, side="left")
    # false positives are summed over the findings of a study, per labelled study
    n_studies = len(np.unique(mc.study[lab])) if mc.multi_finding else int(lab.sum())
    op = mc.column("threshold").dropna()
    operating = float(op.mode().iloc[0]) if len(op) else None
    out = []
    for i, t in enumerate(ts):
        tpi, fpi = int(tp[i]), int(fp[i])
        fni, tni = len(pos) - tpi, len(neg) - fpi
        out.append(
            ThresholdPoint(
                threshold=float(t),
                is_operating=operating is not None and bool(np.isclose(t, operating)),
                tp=tpi,
                fp=fpi,
                tn=tni,
                fn=fni,
                sensitivity=proportion("sensitivity", tpi, len(pos), min_n=min_n, alpha=alpha),
                specificity=proportion("specificity", tni, len(neg), min_n=min_n, alpha=alpha),
                ppv=proportion("ppv", tpi, tpi + fpi, min_n=min_n, alpha=alpha),
                flag_rate=proportion(
                    "flag_rate", int(flagged[i]), len(alls), min_n=min_n, alpha=alpha
                ),
                fp_per_study=rate_per_study(fpi, n_studies, min_n=min_n, alpha=alpha),
            )
        )
    return out
