"""The AI score model: binormal latent scores, a logistic link, and the performance it implies.

Per study the latent score is ``z = offset + contrast * visibility + noise`` with
``visibility ~ N(y * d, 0.5)`` and ``noise ~ N(0, 1 - 0.5 * contrast**2)``. So for one scanner and
model version, negatives are N(offset, 1) and positives N(offset + contrast * d, 1): the binormal
model. The vendor sends ``score = logistic(slope * z + intercept)`` and calls positive when
``score >= threshold``, i.e. ``z >= t = (logit(threshold) - intercept) / slope``. Then exactly
``Se = Phi(offset + contrast*d - t)``, ``Sp = Phi(t - offset)`` and
``AUC = Phi(contrast*d / sqrt 2)``.

Subgroups mix scanners, versions and ages, so their true values are the expectations over the
realised studies (each study's call is a Bernoulli with a known probability); AUC of a mixture is
the exact pair probability over its (mean, slope) levels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import ndtr

VISIBILITY_VAR = 0.5  # share of the unit latent variance carried by the finding's visibility


def latent_threshold(threshold: float, slope: float, intercept: float) -> float:
    """Latent cut-off that the 0-1 operating threshold corresponds to."""
    return (math.log(threshold / (1 - threshold)) - intercept) / slope


def draw_latents(
    rng: np.random.Generator,
    y: np.ndarray,
    separation: np.ndarray,
    contrast: np.ndarray,
    offset: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(visibility, noise, z) for every study; y in {0, 1}."""
    n = len(y)
    visibility = y * separation + rng.standard_normal(n) * math.sqrt(VISIBILITY_VAR)
    noise = rng.standard_normal(n) * np.sqrt(1.0 - VISIBILITY_VAR * contrast**2)
    z = offset + contrast * visibility + noise
    return visibility, noise, z


def to_score(z: np.ndarray, slope: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """The vendor's 0-1 score, rounded to the 4 decimals it sends."""
    return np.round(1.0 / (1.0 + np.exp(-(slope * z + intercept))), 4)


def call_probability(
    y: np.ndarray, separation: np.ndarray, contrast: np.ndarray, offset: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """P(AI calls positive) for each study given its latent parameters (not its noise)."""
    return ndtr(offset + contrast * separation * y - t)


def pair_auc(
    mean_pos: np.ndarray,
    slope_pos: np.ndarray,
    mean_neg: np.ndarray,
    slope_neg: np.ndarray,
    intercept_pos: np.ndarray,
    intercept_neg: np.ndarray,
) -> float | None:
    """Exact AUC of the 0-1 score over all positive-negative pairs of the given studies.

    On the logit scale a study's score is N(slope*mean + intercept, slope^2); studies come in few
    distinct levels, so the pair probability is summed over unique levels with their counts.
    """
    if len(mean_pos) == 0 or len(mean_neg) == 0:
        return None
    lp = np.stack([slope_pos * mean_pos + intercept_pos, slope_pos], axis=1).round(9)
    ln = np.stack([slope_neg * mean_neg + intercept_neg, slope_neg], axis=1).round(9)
    up, cp = np.unique(lp, axis=0, return_counts=True)
    un, cn = np.unique(ln, axis=0, return_counts=True)
    diff = up[:, None, 0] - un[None, :, 0]
    scale = np.sqrt(up[:, None, 1] ** 2 + un[None, :, 1] ** 2)
    prob = ndtr(diff / scale)
    return float((cp[:, None] * cn[None, :] * prob).sum() / (cp.sum() * cn.sum()))


def true_performance(rows: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, Any]:
    """Expected Se, Sp, AUC and prevalence of one model over the studies in ``mask``.

    ``rows`` holds per-study arrays y, p_call, mean (latent mean incl. finding), slope, intercept.
    """
    y = rows["y"][mask]
    p = rows["p_call"][mask]
    pos, neg = y == 1, y == 0
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    out: dict[str, Any] = {
        "n": len(y),
        "n_pos": n_pos,
        "n_neg": n_neg,
        "prevalence": round(n_pos / len(y), 6) if len(y) else None,
        "sensitivity": round(float(p[pos].mean()), 6) if n_pos else None,
        "specificity": round(float(1 - p[neg].mean()), 6) if n_neg else None,
    }
    m, s, b = rows["mean"][mask], rows["slope"][mask], rows["intercept"][mask]
    auc = pair_auc(m[pos], s[pos], m[neg], s[neg], b[pos], b[neg])
    out["auc"] = None if auc is None else round(auc, 6)
    return out


def acceptance_test(
    rng: np.random.Generator,
    separation: float,
    slope: float,
    intercept: float,
    threshold: float,
    contrasts: np.ndarray,
    offsets: np.ndarray,
    prevalence: float,
    n: int = 600,
) -> dict[str, float | int]:
    """A local acceptance test before go-live: an enriched sample (half positive) scored by the
    vendor model on the site scanners; empirical Se, Sp, AUC and PPV at the local prevalence."""
    y = (np.arange(n) < n // 2).astype(float)
    k = rng.integers(0, len(contrasts), n)
    c, off = contrasts[k], offsets[k]
    _, _, z = draw_latents(rng, y, np.full(n, separation), c, off)
    score = to_score(z, np.full(n, slope), np.full(n, intercept))
    call = score >= threshold
    se = float(call[y == 1].mean())
    sp = float(1 - call[y == 0].mean())
    # Mann-Whitney AUC (ties count half)
    order = np.argsort(score, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(1, n + 1)
    _, inv, counts = np.unique(score, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    ranks = (sums / counts)[inv]
    n_pos = int(y.sum())
    n_neg = n - n_pos
    auc = (ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    ppv = se * prevalence / (se * prevalence + (1 - sp) * (1 - prevalence))
    return {
        "sensitivity": round(se, 4),
        "specificity": round(sp, 4),
        "auc": round(float(auc), 4),
        "ppv": round(ppv, 4),
        "n": n,
    }
