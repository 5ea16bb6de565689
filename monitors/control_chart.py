"""CUSUM and EWMA control charts on a per-period proportion (sensitivity, specificity, ...).

Why charts and not a test per month: a CUSUM accumulates small, persistent declines that no
single month's CI shows, while its false-alarm rate stays fixed by design. Parameters are CHOSEN
for a stated in-control average run length (ARL0: periods between false alarms on a stable
stream, default 500) and a design shift, by a documented method, and returned with the chart:

- each period's proportion x/n is standardised against the target p0 with Anscombe's arcsine
  transform, z = 2 sqrt(n) (asin sqrt((x + 3/8)/(n + 3/4)) - asin sqrt(p0)), which is close to
  N(0, 1) in control for any n (the binomial's skew near p = 0.9 would otherwise inflate false
  alarms on the lower side), so periods of different volume share one chart;
- CUSUM: reference value k = shift/2 (optimal for that shift), decision interval h solved from
  Siegmund's (1985) approximation ARL = (exp(-2 D b) + 2 D b - 1) / (2 D^2), D = mu - k,
  b = h + 1.166, so that ARL(mu = 0) = ARL0; restarts at 0 after an alarm;
- EWMA: weight lam (default 0.2), limit L solved from the ARL of a Brook & Evans (1972) Markov
  chain (Lucas & Saccucci 1990), asymptotic limits +/- L sqrt(lam / (2 - lam)); the lower
  one-sided chart is reflected at 0 (Crowder & Hamilton 1992), so credit cannot build up.

Two-sided charts split the false-alarm budget: each side is designed for 2 x ARL0. Periods with
fewer than ``min_n`` cases are shown as INSUFFICIENT_DATA and leave the statistic unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import optimize
from scipy import stats as sps

from monitors.results import ChartParameters, ChartPoint, ControlChart, Status
from monitors.stats import MonitorInputError

__all__ = [
    "DEFAULT_ARL0",
    "DEFAULT_CASE_ARL0",
    "MIN_N_CHART",
    "anscombe_z",
    "bernoulli_arl",
    "bernoulli_cusum",
    "control_chart",
    "cusum_arl",
    "cusum_h",
    "ewma_L",
    "ewma_arl",
]

DEFAULT_ARL0 = 500.0
DEFAULT_CASE_ARL0 = 5000.0  # per-case chart: cases between false alarms
MIN_N_CHART = 30
SIEGMUND = "Siegmund (1985) approximation"
MARKOV = "Brook-Evans Markov chain (Lucas & Saccucci 1990), 201 states"


def anscombe_z(successes, n, target: float) -> np.ndarray:
    """Standardised deviation of x/n from ``target`` (about N(0,1) in control); NaN at n == 0."""
    x = np.asarray(successes, dtype="float64")
    nn = np.asarray(n, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.arcsin(np.sqrt((x + 0.375) / (nn + 0.75)))
        z = 2.0 * np.sqrt(nn) * (a - math.asin(math.sqrt(target)))
    return np.where(nn > 0, z, np.nan)


# --- CUSUM design ----------------------------------------------------------------------------


def cusum_arl(k: float, h: float, shift: float = 0.0) -> float:
    """One-sided CUSUM ARL for a mean shift (in SD, towards the side watched), Siegmund (1985)."""
    d = shift - k
    b = h + 1.166
    if abs(d) < 1e-9:
        return b * b
    return (math.exp(-2 * d * b) + 2 * d * b - 1) / (2 * d * d)


def cusum_h(k: float, arl0: float) -> float:
    """Decision interval h giving in-control ARL ``arl0`` (Siegmund's approximation)."""
    return float(optimize.brentq(lambda h: cusum_arl(k, h) - arl0, 0.0, 100.0))


# --- EWMA design -----------------------------------------------------------------------------


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Gaussian elimination in elementwise numpy. I - Q of an absorbing chain is a nonsingular
    M-matrix, so no pivoting is needed. Why not np.linalg.solve: a 201 x 201 LAPACK solve
    takes ~0.2 s instead of ~3 ms when BLAS threads contend on a busy 2-core machine."""
    a = a.copy()
    b = b.astype("float64").copy()
    n = len(b)
    for i in range(n - 1):
        f = a[i + 1 :, i] / a[i, i]
        a[i + 1 :, i:] -= f[:, None] * a[i, i:]
        b[i + 1 :] -= f * b[i]
    x = np.empty(n)
    for i in range(n - 1, -1, -1):
        x[i] = (b[i] - (a[i, i + 1 :] * x[i + 1 :]).sum()) / a[i, i]
    return x


@lru_cache(maxsize=256)
def ewma_arl(
    lam: float, L: float, shift: float = 0.0, *, one_sided: bool, states: int = 201
) -> float:
    """ARL of an EWMA of N(shift, 1) with asymptotic limits +/- L sqrt(lam/(2-lam)).

    two-sided: in control while -c < Z < c; one-sided (lower, reflected at 0): Z = min(0, ...),
    in control while Z > -c. Brook & Evans Markov chain over ``states`` cells.
    """
    c = L * math.sqrt(lam / (2 - lam))
    lo, hi = -c, (0.0 if one_sided else c)
    w = (hi - lo) / states
    mids = lo + w * (np.arange(states) + 0.5)
    edges = lo + w * np.arange(states + 1)
    # Z' = lam * x + (1 - lam) * m, x ~ N(shift, 1): P(Z' in cell j | m)
    base = (1 - lam) * mids[:, None]
    cdf = sps.norm.cdf((edges[None, :] - base) / lam - shift)
    q = np.diff(cdf, axis=1)
    if one_sided:  # values above 0 are reflected to 0: they land in the top cell
        q[:, -1] += 1.0 - cdf[:, -1]
    arl = _solve(np.eye(states) - q, np.ones(states))
    start = states - 1 if one_sided else states // 2  # Z_0 = 0
    return float(arl[start])


@lru_cache(maxsize=64)
def ewma_L(lam: float, arl0: float, *, one_sided: bool) -> float:
    """Limit width L giving in-control ARL ``arl0`` (Markov-chain ARL)."""
    return float(
        optimize.brentq(
            lambda L: ewma_arl(lam, L, 0.0, one_sided=one_sided) - arl0, 0.5, 6.0, xtol=1e-6
        )
    )


# --- the chart -------------------------------------------------------------------------------


def _target(
    successes: np.ndarray,
    n: np.ndarray,
    target: float | None,
    reference_periods: int | None,
    labels: list[str],
) -> tuple[float | None, str]:
    if target is not None:
        return float(target), "given"
    m = int(reference_periods or 0)
    if m <= 0:
        return None, "none"
    tot_n = n[:m].sum()
    if tot_n == 0:
        return None, "none"
    p0 = float(successes[:m].sum() / tot_n)
    return p0, f"pooled over reference periods {labels[0]}..{labels[min(m, len(labels)) - 1]}"


def control_chart(
    successes: Sequence[int] | np.ndarray,
    n: Sequence[int] | np.ndarray,
    *,
    periods: Sequence[str] | None = None,
    metric: str = "sensitivity",
    target: float | None = None,
    target_source: str | None = None,
    reference_periods: int | None = None,
    kind: str = "cusum",
    direction: str = "lower",
    arl0: float = DEFAULT_ARL0,
    shift_sd: float = 1.0,
    lam: float = 0.2,
    min_n: int = MIN_N_CHART,
) -> ControlChart:
    """Chart the per-period proportion successes/n against a target.

    ``target``: the in-control proportion, e.g. the model card's baseline sensitivity (say so in
    ``target_source``). Without it, the pooled proportion of the first ``reference_periods``
    periods is used (estimating it inflates false alarms somewhat; prefer a baseline).
    ``direction``: "lower" watches for a decline (the default: a falling sensitivity), "upper"
    for a rise, "two-sided" for both. ``shift_sd``: the shift to detect fastest, in SDs of a
    period's standardised statistic.
    """
    x = np.asarray(successes, dtype="int64")
    nn = np.asarray(n, dtype="int64")
    if x.shape != nn.shape:
        raise MonitorInputError("successes and n differ in length")
    if (x < 0).any() or (x > nn).any():
        raise MonitorInputError("successes must lie in [0, n]")
    if kind not in ("cusum", "ewma"):
        raise MonitorInputError(f"kind must be 'cusum' or 'ewma', not {kind!r}")
    if direction not in ("lower", "upper", "two-sided"):
        raise MonitorInputError(f"direction must be lower, upper or two-sided, not {direction!r}")
    if not (arl0 > 1 and shift_sd > 0 and 0 < lam <= 1):
        raise MonitorInputError("need arl0 > 1, shift_sd > 0 and 0 < lam <= 1")
    labels = list(periods) if periods is not None else [str(i) for i in range(len(x))]
    if len(labels) != len(x):
        raise MonitorInputError("periods and counts differ in length")

    p0, source = _target(x, nn, target, reference_periods, labels)
    if target_source:
        source = target_source
    two = direction == "two-sided"
    side_arl = 2 * arl0 if two else arl0
    transform = "Anscombe arcsine: z = 2 sqrt(n) (asin sqrt((x+3/8)/(n+3/4)) - asin sqrt(p0))"
    if kind == "cusum":
        k = shift_sd / 2
        h = cusum_h(k, side_arl)
        arl1 = cusum_arl(k, h, shift_sd)
        params = ChartParameters(
            "cusum", direction, arl0, shift_sd, k, h, None, None, arl1, SIEGMUND, transform
        )
        design = (
            f"k = {k:.3g} (half the design shift of {shift_sd:g} SD), h = {h:.3f} chosen so the "
            f"in-control ARL is {arl0:g} periods{' (each side 2x)' if two else ''} by "
            f"{SIEGMUND}; expected delay for a {shift_sd:g} SD shift {arl1:.1f} periods"
        )
    else:
        L = ewma_L(lam, side_arl, one_sided=not two)
        arl1 = ewma_arl(lam, L, shift_sd if two else -shift_sd, one_sided=not two)
        params = ChartParameters(
            "ewma", direction, arl0, shift_sd, None, None, lam, L, arl1, MARKOV, transform
        )
        design = (
            f"lambda = {lam:g}, L = {L:.3f} chosen so the in-control ARL is {arl0:g} periods "
            f"by a {MARKOV}; expected delay for a {shift_sd:g} SD shift {arl1:.1f} periods"
        )

    if p0 is None or not 0.0 < p0 < 1.0:
        pts = [
            ChartPoint(
                lab,
                int(nn[i]),
                int(x[i]),
                (x[i] / nn[i]) if nn[i] else None,
                None,
                None,
                None,
                None,
                False,
                Status.UNDEFINED,
            )
            for i, lab in enumerate(labels)
        ]
        why = "no target" if p0 is None else f"target {p0:g} at the edge of [0, 1]"
        return ControlChart(
            metric,
            p0,
            source,
            params,
            pts,
            [],
            None,
            Status.UNDEFINED,
            f"{kind.upper()} on {metric}: not charted ({why}).",
        )

    z = anscombe_z(x, nn, p0)
    sign = 1.0 if direction == "upper" else -1.0  # one-sided: a move the watched way is > 0
    if kind == "cusum":
        lim_lo, lim_hi = None, params.h
    else:
        c = params.L * math.sqrt(lam / (2 - lam))
        lim_lo = -c if direction != "upper" else None
        lim_hi = c if direction != "lower" else None
    pts: list[ChartPoint] = []
    alarms: list[str] = []
    s1 = s_hi = 0.0  # CUSUM: watched side (lower side when two-sided) and the upper side
    e = 0.0  # EWMA
    for i, lab in enumerate(labels):
        ni, xi = int(nn[i]), int(x[i])
        value = xi / ni if ni else None
        if ni < min_n:  # not charted: the statistic carries over unchanged
            st = Status.UNDEFINED if ni == 0 else Status.INSUFFICIENT_DATA
            stat = s1 if kind == "cusum" else e
            upper = s_hi if (two and kind == "cusum") else None
            pts.append(ChartPoint(lab, ni, xi, value, None, stat, lim_lo, lim_hi, False, st, upper))
            continue
        zi = float(z[i])
        upper = None
        if kind == "cusum":
            if two:
                s1 = max(0.0, s1 - zi - params.k)
                s_hi = max(0.0, s_hi + zi - params.k)
                upper = s_hi
                alarm = s1 > params.h or s_hi > params.h
            else:
                s1 = max(0.0, s1 + sign * zi - params.k)
                alarm = s1 > params.h
            stat = s1
        else:
            e = lam * zi + (1 - lam) * e
            if direction == "lower":
                e = min(0.0, e)
                alarm = e < lim_lo
            elif direction == "upper":
                e = max(0.0, e)
                alarm = e > lim_hi
            else:
                alarm = abs(e) > lim_hi
            stat = e
        pts.append(
            ChartPoint(lab, ni, xi, value, zi, stat, lim_lo, lim_hi, alarm, Status.OK, upper)
        )
        if alarm:  # restart after a signal
            alarms.append(lab)
            s1 = s_hi = e = 0.0
    ok = any(p.status is Status.OK for p in pts)
    side = {"lower": "lower one-sided", "upper": "upper one-sided", "two-sided": "two-sided"}
    desc = (
        f"{side[direction].capitalize()} {kind.upper()} on per-period {metric}, target "
        f"p0 = {p0:.4g} ({source}); {design}. Periods with n < {min_n} are not charted."
    )
    return ControlChart(
        metric,
        p0,
        source,
        params,
        pts,
        alarms,
        alarms[0] if alarms else None,
        Status.OK if ok else (Status.INSUFFICIENT_DATA if pts else Status.UNDEFINED),
        desc,
    )


# --- per-case Bernoulli CUSUM ----------------------------------------------------------------

BERNOULLI = "exact Markov chain of the integer-step chart (Reynolds & Stoumbos 1999)"


def bernoulli_arl(p: float, miss_step: int, h: int) -> float:
    """ARL (in cases) of the integer lower Bernoulli CUSUM: S = max(0, S - 1) on a success
    (probability ``p``), S + miss_step on a failure, alarm when S >= h. Exact: states 0..h-1
    of a banded Markov chain, solved with scipy's banded LAPACK solver."""
    from scipy.linalg import solve_banded

    b = int(miss_step)
    ab = np.zeros((b + 2, h))  # (I - Q) in banded form: row b + i - j holds A[i, j]
    ab[b, :] = 1.0
    ab[b, 0] -= p  # a success at 0 stays at 0
    ab[b + 1, : h - 1] = -p  # success: s -> s - 1
    if b < h:
        ab[0, b:] = -(1.0 - p)  # failure: s -> s + b (absorbed when >= h)
    x = solve_banded((1, b), ab, np.ones(h))
    return float(x[0])


def bernoulli_cusum(
    outcomes: Sequence[int] | np.ndarray,
    *,
    p0: float,
    drop: float = 0.05,
    arl0: float = DEFAULT_CASE_ARL0,
    labels: Sequence[str] | None = None,
    metric: str = "sensitivity",
    target_source: str = "given",
) -> ControlChart:
    """A per-case chart for low-volume models: one point per case in time order, outcome 1 =
    success (e.g. a positive case the AI flagged), 0 = failure. It is the log-likelihood-ratio
    CUSUM for a decline from ``p0`` to ``p1 = p0 - drop``: a success adds log(p1/p0) < 0, a
    failure log((1-p1)/(1-p0)) > 0. The weights are scaled so a success is -1 and a failure
    +round(ratio) (integer steps), which makes the in-control ARL exactly computable; the
    decision interval is the smallest one whose ARL (in cases) reaches ``arl0``."""
    y = np.asarray(outcomes, dtype="int64")
    if not np.isin(y, (0, 1)).all():
        raise MonitorInputError("outcomes must be 0/1")
    p1 = p0 - drop
    if not (0.0 < p1 < p0 < 1.0) or arl0 <= 1:
        raise MonitorInputError("need 0 < p0 - drop < p0 < 1 and arl0 > 1")
    unit = -math.log(p1 / p0)
    step = max(1, round(math.log((1 - p1) / (1 - p0)) / unit))
    hi = step + 1
    while bernoulli_arl(p0, step, hi) < arl0:
        hi *= 2
    lo = max(1, hi // 2)
    while lo < hi:  # smallest h with ARL0 >= arl0 (ARL grows with h)
        mid = (lo + hi) // 2
        if bernoulli_arl(p0, step, mid) >= arl0:
            hi = mid
        else:
            lo = mid + 1
    h = hi
    arl_in = bernoulli_arl(p0, step, h)
    arl1 = bernoulli_arl(p1, step, h)
    params = ChartParameters(
        "bernoulli-cusum",
        "lower",
        arl_in,
        drop,
        None,
        h * unit,
        None,
        None,
        arl1,
        BERNOULLI,
        f"per case: +{step} per failure, -1 per success (log-likelihood ratio / {unit:.4g})",
    )
    names = list(labels) if labels is not None else [str(i) for i in range(len(y))]
    if len(names) != len(y):
        raise MonitorInputError("labels and outcomes differ in length")
    pts: list[ChartPoint] = []
    alarms: list[str] = []
    st = 0
    for lab, yi in zip(names, y.tolist(), strict=True):
        st = max(0, st - 1) if yi else st + step
        alarm = st >= h
        pts.append(
            ChartPoint(lab, 1, yi, float(yi), None, st * unit, None, h * unit, alarm, Status.OK)
        )
        if alarm:
            alarms.append(lab)
            st = 0
    desc = (
        f"Per-case Bernoulli CUSUM on {metric}, p0 = {p0:.4g} ({target_source}), designed for "
        f"a drop to {p1:.4g}: +{step} per failure, -1 per success, alarm at {h}, chosen as "
        f"the smallest limit with an in-control ARL of at least {arl0:g} cases "
        f"(exact: {arl_in:.0f}) by an {BERNOULLI}; expected delay after the drop "
        f"{arl1:.0f} cases. Restarts at 0 after an alarm."
    )
    return ControlChart(
        metric,
        p0,
        target_source,
        params,
        pts,
        alarms,
        alarms[0] if alarms else None,
        Status.OK if pts else Status.UNDEFINED,
        desc,
    )
