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
