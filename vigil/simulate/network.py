"""The network's studies as columns of numpy arrays: every random draw of a run happens here.

One ``numpy.random.Generator`` seeded by the run's seed draws everything in a fixed order, in
whole-column (vectorised) calls, so a run is reproducible byte for byte and a million studies take
seconds. Message writing (hl7_writer) only formats what this module decided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitors.frame import SUBGROUP_ATTRIBUTES  # the manifest states truth per scanned group
from vigil.simulate import catalog as C
from vigil.simulate.config import SimulationConfig
from vigil.simulate.events import Event, schedule
from vigil.simulate.scores import call_probability, draw_latents, latent_threshold, to_score

DAY = 86400
MIN = 60
HOUR = 3600

# diurnal profile of exam start hour per patient class (inpatient, outpatient, emergency)
_HOURS = np.array(
    [
        [1, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 9, 8, 9, 9, 9, 8, 7, 6, 5, 4, 3, 2, 1],
        [0, 0, 0, 0, 0, 0, 0, 4, 10, 12, 12, 11, 8, 10, 12, 11, 9, 6, 3, 1, 0, 0, 0, 0],
        [3, 3, 2, 2, 2, 2, 3, 4, 5, 6, 7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 7, 6, 5, 4],
    ],
    dtype=float,
)
_HOUR_CDF = np.cumsum(_HOURS / _HOURS.sum(axis=1, keepdims=True), axis=1)

# report turnaround (exam end -> first report), lognormal median in minutes and sigma, by class
_TAT = ((150.0, 0.8), (16 * 60.0, 0.7), (40.0, 0.55))
TRIAGE_FACTOR = 0.55  # AI-positive studies after go-live: first report this much sooner
READ_FACTOR_AI = 0.92  # read time of AI-read procedures after go-live
RADIS_SITES = tuple(i for i, s in enumerate(C.SITES) if s.ris == "RADIS")
NONE = -1  # "no such time" in int64 time columns


@dataclass
class Network:
    """The simulated studies (sorted by exam start) and everything needed to write their feeds."""

    config: SimulationConfig
    events: list[Event]
    go_live: list[int]  # per model, epoch seconds
    cols: dict[str, np.ndarray]
    patients: dict[str, np.ndarray]
    rad_table: list[tuple[str, str, str, bool]]  # global radiologist index -> (id, fam, giv, gb)
    t_latent: dict[tuple[int, int], float] = field(default_factory=dict)  # (model, version) -> t
    _groups: dict[str, np.ndarray] | None = field(default=None, repr=False)
    _truth_cache: dict[int, Any] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.cols["site"])


def _lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma, n: int) -> np.ndarray:
    return np.asarray(median) * np.exp(np.asarray(sigma) * rng.standard_normal(n))


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) probability matrix."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random(len(probs))[:, None]
    return np.minimum((u > cdf).sum(axis=1), probs.shape[1] - 1)


def build(config: SimulationConfig) -> Network:
    """Draw the whole network for ``config`` (validated)."""
    rng = np.random.default_rng(config.seed)
    n = config.studies
    t0 = int(config.start_dt.timestamp())
    t_end = int(config.end_dt.timestamp())
    ndays = (t_end - t0) // DAY
    events = schedule(config)
    ev = {e.kind: e for e in events}
    go_live = [t0 + round(ndays * m.go_live_frac) * DAY for m in C.MODELS]

    # --- site, day, class, hour ------------------------------------------------------------
    site = rng.choice(len(C.SITES), n, p=[s.share for s in C.SITES]).astype(np.int8)
    day = rng.integers(0, ndays, n)
    class_p = np.array([s.class_mix for s in C.SITES])[site]
    if "population_shift" in ev:
        e = ev["population_shift"]
        after = (site == C.SITE_INDEX[e.site]) & (t0 + day * DAY >= e.start_ts)
        class_p[after] = (0.20, 0.20, 0.60)
    pclass = _choice_rows(rng, class_p).astype(np.int8)
    # outpatient studies on a weekend mostly move to the nearest weekday
    weekday = (t0 // DAY + day + 3) % 7  # Monday = 0
    move = (pclass == 1) & (weekday >= 5) & (rng.random(n) < 0.85)
    day = np.where(move, np.clip(day + np.where(weekday == 5, -1, 1), 0, ndays - 1), day)
    hour = np.empty(n, dtype=np.int64)
    u = rng.random(n)
    for k in range(3):
        sel = pclass == k
        hour[sel] = np.searchsorted(_HOUR_CDF[k], u[sel], side="right").clip(0, 23)
    exam_start = t0 + day * DAY + hour * HOUR + rng.integers(0, HOUR, n)

    # --- procedure, scanner ----------------------------------------------------------------
    proc = _choice_rows(rng, np.array([s.proc_mix for s in C.SITES])[site]).astype(np.int8)
    modality_mr = np.array([p.modality == "MR" for p in C.PROCEDURES])[proc]
    scanner = np.zeros(n, dtype=np.int8)
    u = rng.random(n)
    for si, s in enumerate(C.SITES):
        for mod in ("CT", "MR"):
            sel = (site == si) & (modality_mr == (mod == "MR"))
            cands = [
                (k, sc) for k, sc in enumerate(C.SCANNERS)
                if sc.site == s.code and sc.modality == mod and not sc.replacement
            ]  # fmt: skip
            w = np.cumsum([sc.weight for _, sc in cands])
            idx = np.searchsorted(w / w[-1], u[sel], side="right").clip(0, len(cands) - 1)
            scanner[sel] = np.array([k for k, _ in cands])[idx]
    if "scanner_replacement" in ev:
        e = ev["scanner_replacement"]
        old, new = (
            C.SCANNER_INDEX[e.params["old_scanner"]],
            C.SCANNER_INDEX[e.params["new_scanner"]],
        )
        scanner[(scanner == old) & (exam_start >= e.start_ts)] = new

    # --- patients (a pool per site; some come back) -------------------------------------------
    patient = np.zeros(n, dtype=np.int64)
    pat_cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("site", "age0", "sex", "race", "eth", "given", "family", "mrn", "birth",
                        "street", "city", "house")
    }  # fmt: skip
    offset = 0
    start_day = t0 // DAY
    for si, s in enumerate(C.SITES):
        sel = np.flatnonzero(site == si)
        pool = max(1, int(len(sel) * 0.72))
        patient[sel] = offset + rng.integers(0, pool, len(sel))
        age0 = rng.normal(s.age_mean, s.age_sd, pool)
        kids = rng.random(pool) < (0.0 if s.code == "WIC" else 0.03)
        age0 = np.where(kids, rng.uniform(0, 18, pool), np.clip(age0, 18, 99.5))
        sex = rng.choice(3, pool, p=(0.52, 0.4795, 0.0005))
        race = rng.choice(len(C.RACES), pool, p=np.array(s.race_mix) / sum(s.race_mix))
        eth_u = rng.random(pool)
        eth = np.where(eth_u < s.hispanic, 0, np.where(eth_u < 0.97, 1, 2))
        given = rng.integers(0, 1000, pool)
        family = rng.integers(0, len(C.FAMILY), pool)
        birth = start_day - np.floor(age0 * 365.25).astype(np.int64)
        pat_cols["site"].append(np.full(pool, si))
        pat_cols["age0"].append(age0)
        pat_cols["sex"].append(sex)
        pat_cols["race"].append(race)
        pat_cols["eth"].append(eth)
        pat_cols["given"].append(given)
        pat_cols["family"].append(family)
        pat_cols["mrn"].append(1_000_000 * (si + 1) + 13 + np.arange(pool) * 7)
        pat_cols["birth"].append(birth)
        pat_cols["street"].append(rng.integers(0, len(C.STREETS), pool))
        pat_cols["city"].append(rng.integers(0, len(C.CITIES), pool))
        pat_cols["house"].append(rng.integers(1, 9999, pool))
        offset += pool
    patients = {k: np.concatenate(v) for k, v in pat_cols.items()}
    age = ((exam_start // DAY - patients["birth"][patient]) / 365.25).astype(np.int64)
    sex = patients["sex"][patient].astype(np.int8)
    race = patients["race"][patient].astype(np.int8)
    eth = patients["eth"][patient].astype(np.int8)

    # --- truth and AI --------------------------------------------------------------------------
    model = np.array([p.model for p in C.PROCEDURES], dtype=np.int8)[proc]
    prev = np.zeros(n)
    is_ich, is_nod = model == 0, model == 1
    prev[is_ich] = np.array([0.08, 0.02, 0.11])[pclass[is_ich]]
    prev[is_ich & (age >= 80)] *= 1.4
    prev[is_ich & (age < 18)] *= 0.6
    prev[is_nod] = np.array([0.20, 0.24, 0.18])[pclass[is_nod]]
    prev[is_nod & (age >= 65)] *= 1.25
    prev[is_nod & (age < 40)] *= 0.4
    y = np.where(model >= 0, (rng.random(n) < prev).astype(np.int8), -1).astype(np.int8)

    version = np.zeros(n, dtype=np.int8)
    if "model_version_update" in ev:
        e = ev["model_version_update"]
        version[(model == C.MODEL_INDEX[e.models[0]]) & (exam_start >= e.start_ts)] = 1
    sep = np.zeros(n)
    slope = np.zeros(n)
    intercept = np.zeros(n)
    t_lat = np.zeros(n)
    t_latent: dict[tuple[int, int], float] = {}
    for mi, m in enumerate(C.MODELS):
        for vi, v in enumerate(m.versions):
            sel = (model == mi) & (version == vi)
            t = latent_threshold(m.threshold, v.slope, v.intercept)
            t_latent[(mi, vi)] = t
            sep[sel], slope[sel], intercept[sel], t_lat[sel] = v.separation, v.slope, v.intercept, t
        sep[(model == mi) & (age < 18)] *= m.pediatric_factor
    if "subgroup_degradation" in ev:
        e = ev["subgroup_degradation"]
        sel = (model == C.MODEL_INDEX[e.models[0]]) & (age >= 80) & (exam_start >= e.start_ts)
        sep[sel] *= e.params["separation_factor"]
    contrast = np.array([s.contrast for s in C.SCANNERS])[scanner]
    offs = np.array([s.offset for s in C.SCANNERS])[scanner]
    yy = np.maximum(y, 0).astype(float)
    visibility, noise, z = draw_latents(rng, yy, sep, contrast, offs)
    has_ai = model >= 0
    score = np.where(has_ai, to_score(z, slope, intercept), np.nan)
    thr = np.array([m.threshold for m in C.MODELS] + [np.nan])[model]
    ai_call = np.where(has_ai, score >= thr, False)
    p_call = np.where(has_ai, call_probability(yy, sep, contrast, offs, t_lat), np.nan)
    latent_mean = offs + contrast * sep * yy
    # studies without a model carry no latents
    for arr in (visibility, noise, z, latent_mean):
        arr[~has_ai] = np.nan

    # --- radiologist ------------------------------------------------------------------------
    miss = np.array([m.miss_rate for m in C.MODELS] + [0])[model]
    over = np.array([m.overcall_rate for m in C.MODELS] + [0])[model]
    unc_p = np.array([m.uncertain_pos for m in C.MODELS] + [0])[model]
    unc_n = np.array([m.uncertain_neg for m in C.MODELS] + [0])[model]
    u = rng.random(n)
    # labels: 0 negative, 1 positive, 2 uncertain, -1 no finding read for this procedure
    lab_pos = np.where(u < miss, 0, np.where(u < miss + unc_p, 2, 1))
    lab_neg = np.where(u < over, 1, np.where(u < over + unc_n, 2, 0))
    rad_initial = np.where(y == 1, lab_pos, np.where(y == 0, lab_neg, -1)).astype(np.int8)
    rad_offsets = np.cumsum([0] + [len(C.RADIOLOGISTS[s.code]) for s in C.SITES])
    rad_table = [r for s in C.SITES for r in C.RADIOLOGISTS[s.code]]
    n_rads = np.diff(rad_offsets)[site]
    radiologist = rad_offsets[site] + (rng.random(n) * n_rads).astype(np.int64)
    prelim_rad = rad_offsets[site] + (rng.random(n) * n_rads).astype(np.int64)

    # --- times ------------------------------------------------------------------------------
    exam_len = np.where(
        modality_mr, _lognormal(rng, 25 * MIN, 0.3, n), _lognormal(rng, 6 * MIN, 0.35, n)
    )
    exam_end = exam_start + exam_len.astype(np.int64) + 60
    wait_med = np.array([180 * MIN, 5 * DAY, 25 * MIN])[pclass]
    wait_sig = np.array([0.9, 0.8, 0.6])[pclass]
    wait = np.minimum(_lognormal(rng, wait_med, wait_sig, n), 30 * DAY)
    ordered = exam_start - wait.astype(np.int64) - 120
    adt_med = np.array([1 * DAY, 10 * MIN, 8 * MIN])[pclass]
    adt = ordered - np.minimum(_lognormal(rng, adt_med, 0.5, n), 7 * DAY).astype(np.int64) - 30
    ai_time = np.where(has_ai, exam_end + _lognormal(rng, 4 * MIN, 0.4, n).astype(np.int64), NONE)
    tat = _lognormal(
        rng, np.array([t[0] for t in _TAT])[pclass] * MIN, np.array([t[1] for t in _TAT])[pclass], n
    )
    go = np.array([*go_live, 2**62])[model]
    triaged = has_ai & ai_call & (exam_start >= go)
    tat = np.where(triaged, tat * TRIAGE_FACTOR, tat)
    first_report = ai_time.clip(min=exam_end) + 60 + tat.astype(np.int64)
    first_report = np.maximum(first_report, np.where(has_ai, ai_time + 30, exam_end + 60))
    prelim_share = np.array([s.prelim_share for s in C.SITES])[site]
    has_prelim = (pclass != 1) & (rng.random(n) < prelim_share)
    final_gap = _lognormal(rng, 5 * HOUR, 0.7, n).astype(np.int64) + 10 * MIN
    prelim_time = np.where(has_prelim, first_report, NONE)
    final_time = np.where(has_prelim, first_report + final_gap, first_report)
    read_med = np.array([p.read_min for p in C.PROCEDURES])[proc] * MIN
    read_med = np.where(has_ai & (exam_start >= go), read_med * READ_FACTOR_AI, read_med)
    read_len = _lognormal(rng, read_med, 0.5, n).astype(np.int64) + 30
    read_end = final_time - _lognormal(rng, 1.0 * MIN, 0.5, n).astype(np.int64) - 5
    read_start = np.maximum(read_end - read_len, exam_end + 10)
    radis = np.isin(site, RADIS_SITES)
    read_start = np.where(radis, read_start, NONE)
    read_end = np.where(radis, read_end, NONE)

    # corrections fix some misses/overcalls later; a few fix a typo; addenda add a note
    wrong = ((y == 1) & (rad_initial == 0)) | ((y == 0) & (rad_initial == 1))
    u = rng.random(n)
    corrected = (wrong & (u < 0.15)) | (~wrong & (u > 0.996))
    correction_time = np.where(
        corrected, final_time + _lognormal(rng, 2 * DAY, 1.0, n).astype(np.int64) + HOUR, NONE
    )
    rad_final = np.where(corrected & wrong, y, rad_initial).astype(np.int8)
    addendum = ~corrected & (rng.random(n) < 0.02)
    addendum_time = np.where(
        addendum, final_time + _lognormal(rng, 3 * HOUR, 1.0, n).astype(np.int64) + 5 * MIN, NONE
    )
    a08 = rng.random(n) < 0.06
    a08_time = np.where(
        a08, ordered + (rng.random(n) * (final_time - ordered)).astype(np.int64), NONE
    )

    coded_share = np.array([s.coded_share for s in C.SITES])[site]
    coded = (rng.random(n) < coded_share) & (model >= 0)
    text_choice = rng.integers(0, 2**31 - 1, n)
    study_seed = rng.integers(0, 2**62, n)
    stat = ((site + proc) % 5 == 0) | (pclass == 2)  # OBR-27 priority: STAT for emergencies

    cols: dict[str, np.ndarray] = {
        "site": site, "patient": patient, "pclass": pclass, "proc": proc, "scanner": scanner,
        "age": age, "sex": sex, "race": race, "eth": eth, "model": model, "y": y,
        "version": version, "separation": sep, "contrast": contrast, "score_offset": offs,
        "visibility": visibility, "noise": noise, "z": z, "latent_mean": latent_mean,
        "slope": slope, "intercept": intercept, "score": score, "ai_call": ai_call,
        "p_call": p_call, "rad_initial": rad_initial, "rad_final": rad_final,
        "radiologist": radiologist, "prelim_rad": prelim_rad, "has_prelim": has_prelim,
        "corrected": corrected, "addendum": addendum, "coded": coded, "stat": stat,
        "adt_time": adt, "a08_time": a08_time, "ordered": ordered, "exam_start": exam_start,
        "exam_end": exam_end, "ai_time": ai_time, "prelim_time": prelim_time,
        "final_time": final_time, "correction_time": correction_time,
        "addendum_time": addendum_time, "read_start": read_start, "read_end": read_end,
        "triaged": triaged, "text_choice": text_choice, "seed": study_seed,
    }  # fmt: skip
    order = np.argsort(exam_start, kind="stable")
    cols = {k: v[order] for k, v in cols.items()}
    # accession numbers in exam order within each site
    seq = np.zeros(n, dtype=np.int64)
    for si in range(len(C.SITES)):
        sel = cols["site"] == si
        seq[sel] = np.arange(1, int(sel.sum()) + 1)
    cols["seq"] = seq
    return Network(config, events, go_live, cols, patients, rad_table, t_latent)


def subgroup_values(net: Network) -> dict[str, np.ndarray]:
    """Per-study subgroup labels as object arrays, named like the case frame's columns."""
    if net._groups is None:
        net._groups = _subgroup_values(net)
    return net._groups


def _subgroup_values(net: Network) -> dict[str, np.ndarray]:
    c = net.cols
    bands = np.array([b[0] for b in C.AGE_BANDS], dtype=object)
    edges = np.array([b[1] for b in C.AGE_BANDS[1:]])
    return {
        "site": np.array([s.code for s in C.SITES], dtype=object)[c["site"]],
        "sex": np.array(C.SEXES, dtype=object)[c["sex"]],
        "age_band": bands[np.searchsorted(edges, c["age"], side="right")],
        "race": np.array([r[1] for r in C.RACES], dtype=object)[c["race"]],
        "ethnicity": np.array([e[1] for e in C.ETHNICITIES], dtype=object)[c["eth"]],
        "patient_class": np.array(C.PATIENT_CLASSES, dtype=object)[c["pclass"]],
        "scanner_manufacturer": np.array([s.manufacturer for s in C.SCANNERS], dtype=object)[
            c["scanner"]
        ],
        "scanner_model": np.array([s.model for s in C.SCANNERS], dtype=object)[c["scanner"]],
    }


def _group_codes(net: Network) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Per attribute: integer code per study and the value names (fast masks, no objects)."""
    c = net.cols
    edges = np.array([b[1] for b in C.AGE_BANDS[1:]])
    manus = sorted({s.manufacturer for s in C.SCANNERS})
    manu_code = np.array([manus.index(s.manufacturer) for s in C.SCANNERS])[c["scanner"]]
    return {
        "sex": (c["sex"], list(C.SEXES)),
        "age_band": (np.searchsorted(edges, c["age"], side="right"), [b[0] for b in C.AGE_BANDS]),
        "race": (c["race"], [r[1] for r in C.RACES]),
        "ethnicity": (c["eth"], [e[1] for e in C.ETHNICITIES]),
        "site": (c["site"], [s.code for s in C.SITES]),
        "scanner_manufacturer": (manu_code, manus),
        "patient_class": (c["pclass"], list(C.PATIENT_CLASSES)),
    }


@dataclass
class _ModelTruth:
    """One model's studies with their score levels, for exact expected performance."""

    idx: np.ndarray  # study indices of the model
    y: np.ndarray
    p_call: np.ndarray
    level: np.ndarray  # index into the distinct (logit mean, logit sd) levels
    pair: np.ndarray  # P(score of level i > score of level j)
    codes: dict[str, tuple[np.ndarray, list[str]]]


def _model_truth(net: Network, model: int) -> _ModelTruth:
    cache = net._truth_cache
    if model in cache:
        return cache[model]
    from scipy.special import ndtr

    c = net.cols
    idx = np.flatnonzero(c["model"] == model)
    mu = (c["slope"] * c["latent_mean"] + c["intercept"])[idx].round(9)
    sd = c["slope"][idx].round(9)
    levels, level = np.unique(np.stack([mu, sd], axis=1), axis=0, return_inverse=True)
    diff = levels[:, None, 0] - levels[None, :, 0]
    scale = np.sqrt(levels[:, None, 1] ** 2 + levels[None, :, 1] ** 2)
    codes = {k: (v[idx], names) for k, (v, names) in _group_codes(net).items()}
    mt = _ModelTruth(idx, c["y"][idx], c["p_call"][idx], level.ravel(), ndtr(diff / scale), codes)
    cache[model] = mt
    return mt


def _perf(mt: _ModelTruth, sel: np.ndarray) -> dict[str, Any]:
    y, p = mt.y[sel], mt.p_call[sel]
    pos, neg = y == 1, y == 0
    n, n_pos, n_neg = len(y), int(pos.sum()), int(neg.sum())
    auc = None
    if n_pos and n_neg:
        size = len(mt.pair)
        cp = np.bincount(mt.level[sel][pos], minlength=size)
        cn = np.bincount(mt.level[sel][neg], minlength=size)
        auc = round(float(cp @ mt.pair @ cn / (n_pos * n_neg)), 6)
    return {
        "n": n,
        "n_pos": n_pos,
        "n_neg": n_neg,
        "prevalence": round(n_pos / n, 6) if n else None,
        "sensitivity": round(float(p[pos].mean()), 6) if n_pos else None,
        "specificity": round(float(1 - p[neg].mean()), 6) if n_neg else None,
        "auc": auc,
    }


def performance_table(
    net: Network, model: int, mask: np.ndarray, subgroups: bool = True
) -> dict[str, Any]:
    """True (expected) performance of ``model`` over the ``mask`` studies, overall and per
    subgroup value: Se/Sp are means of each study's call probability; AUC is the exact pair
    probability over the studies' score levels."""
    mt = _model_truth(net, model)
    sel = mask[mt.idx]
    out: dict[str, Any] = {"overall": _perf(mt, sel)}
    if not subgroups:
        return out
    for attr in SUBGROUP_ATTRIBUTES:
        codes, names = mt.codes[attr]
        for k in np.unique(codes[sel]).tolist():
            out[f"{attr}={names[k]}"] = _perf(mt, sel & (codes == k))
    return dict(sorted(out.items(), key=lambda kv: (kv[0] != "overall", kv[0])))


def design_values(
    model: int, version: int, contrast: float, offset: float, sep_factor: float = 1.0
) -> dict[str, float]:
    """Closed-form Se, Sp, AUC for one homogeneous slice (one scanner, version, age factor)."""
    from scipy.special import ndtr

    m = C.MODELS[model]
    v = m.versions[version]
    t = latent_threshold(m.threshold, v.slope, v.intercept)
    d = contrast * v.separation * sep_factor
    return {
        "sensitivity": round(float(ndtr(offset + d - t)), 6),
        "specificity": round(float(ndtr(t - offset)), 6),
        "auc": round(float(ndtr(d / math.sqrt(2))), 6),
        "d": round(d, 6),
        "latent_threshold": round(t, 6),
    }
