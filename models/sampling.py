"""Stratified sampling of cases for re-scoring, with discordant cases oversampled.

Strata are site x period (calendar month of the exam) x subgroup (an attribute such as the age
band). Discordant cases (AI call and radiologist label disagree) are where reproducibility matters
most and are rare, so they get ``discordant_factor`` times their share of the sample (capped by
how many there are). Within the discordant and the concordant pool, the sample is allocated to
strata in proportion to their size by largest remainder, with at least one case per stratum while
the budget allows, so small sites and subgroups are never left out. A fixed seed makes the
sample repeatable — which is also what makes an interrupted job resumable. Each sampled case
carries a ``weight`` (eligible cases in its stratum and class / sampled ones), so agreement can
be estimated for all eligible cases despite the oversampling.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vigil.errors import InvalidInputError


def allocate(sizes: np.ndarray, n: int) -> np.ndarray:
    """Per-stratum counts summing to min(n, sizes.sum()): one each first, then proportional."""
    sizes = np.asarray(sizes, dtype=np.int64)
    n = int(min(n, sizes.sum()))
    out = np.zeros_like(sizes)
    if n <= 0:
        return out
    order = np.argsort(-sizes, kind="stable")
    if n <= (sizes > 0).sum():  # fewer cases than strata: the largest strata get one each
        out[order[:n]] = 1
        return out
    out[sizes > 0] = 1
    rest, room = n - out.sum(), sizes - out
    share = room / room.sum() * rest
    base = np.minimum(np.floor(share).astype(np.int64), room)
    out += base
    left = n - out.sum()
    frac = np.where(room - base > 0, share - base, -1.0)
    while left > 0:
        for i in np.argsort(-frac, kind="stable"):
            if left == 0:
                break
            if out[i] < sizes[i]:
                out[i] += 1
                left -= 1
        frac = np.where(sizes - out > 0, 0.0, -1.0)
    return out


def stratified_sample(
    cases: pd.DataFrame,
    n: int,
    *,
    seed: int = 0,
    strata: tuple[str, ...] = ("site", "period", "subgroup"),
    discordant_factor: float = 3.0,
) -> pd.DataFrame:
    """Rows of ``cases`` (needs the ``strata`` columns and a boolean ``discordant``) to re-score."""
    if n < 0:
        raise InvalidInputError("--sample must be at least 1")
    if cases.empty or n == 0:
        return cases.iloc[0:0]
    cases = cases.sort_values("study_id", kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    disc = cases["discordant"].fillna(False).astype(bool).to_numpy()
    n_disc_avail = int(disc.sum())
    n = min(n, len(cases))
    want_disc = min(n_disc_avail, round(n * min(1.0, discordant_factor * disc.mean())))
    want = {True: want_disc, False: n - want_disc}
    if want[False] > int((~disc).sum()):  # not enough concordant cases: top up with discordant
        want[False] = int((~disc).sum())
        want[True] = min(n_disc_avail, n - want[False])
    keys = cases[list(strata)].astype(str).agg("|".join, axis=1).to_numpy()
    picked: list[int] = []
    weights: dict[int, float] = {}
    for flag in (True, False):
        pool = np.flatnonzero(disc == flag)
        if len(pool) == 0 or want[flag] == 0:
            continue
        groups: dict[str, list[int]] = {}
        for i in pool:
            groups.setdefault(keys[i], []).append(int(i))
        names = sorted(groups)
        counts = allocate(np.array([len(groups[k]) for k in names]), want[flag])
        got: list[int] = []
        for name, k in zip(names, counts, strict=True):
            if k:
                chosen = rng.choice(groups[name], size=int(k), replace=False).tolist()
                got.extend(chosen)
                for i in chosen:  # how many eligible cases each sampled one stands for
                    weights[i] = len(groups[name]) / int(k)
        # strata left without a case (more strata than budget) are carried by the others of
        # the same class: the class's weights add up to its number of eligible cases
        total = sum(weights[i] for i in got)
        for i in got:
            weights[i] *= len(pool) / total
        picked.extend(got)
    order = sorted(picked)
    out = cases.iloc[order].reset_index(drop=True)
    out["weight"] = [weights[i] for i in order]
    return out
