"""The re-scoring job: sample cases, fetch their images, rerun a model, store per-case results.

``run_rescore`` is what ``vigil rescore`` calls. The sample is stratified and seeded (see
``models.sampling``); images come from a ``models.sources`` source inside DataLoader workers
(fetch, decode and preprocess overlap inference; pinned memory on CUDA); each batch's results
are committed as soon as it is scored, so an interrupted job loses at most one batch and a rerun
skips every case already scored by the same model hash. A case that fails (study missing,
unsupported transfer syntax, unreadable pixels) is stored with its reason and the job goes on.
Grad-CAM maps of discordant cases are written as PNG under ``<data_dir>/saliency/``.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine
from sqlmodel import select

from models.adapters import AdapterSpec, load_spec, make_adapter
from models.sampling import stratified_sample
from models.sources import CaseError, ImageSource, open_source
from vigil.audit import record
from vigil.errors import InvalidInputError
from vigil.settings import Settings
from vigil.store.db import session_scope
from vigil.store.tables import AIModel, AIResult, FinalRead, RescoreResult, Study
from vigil.store.types import utcnow

AGE_EDGES = [(0, "0-17"), (18, "18-39"), (40, "40-64"), (65, "65-79"), (80, "80+")]


@dataclass
class RescoreOptions:
    """Options of one job (the CLI's flags)."""

    model: str
    source: str
    sample: int | None = None
    fraction: float | None = None
    since: date | None = None
    device: str = "auto"
    adapter: str | None = None
    spec: Path | None = None
    seed: int = 0
    batch_size: int = 64
    workers: int | None = None  # None: chosen from the device and the number of cases
    discordant_factor: float = 3.0
    saliency: bool = True
    actor: str = "cli"


@dataclass
class RescoreSummary:
    run_id: str
    model: str
    device: str
    model_hash: str
    source: str
    n_selected: int = 0
    n_skipped: int = 0  # already scored by this model hash (resumed)
    n_scored: int = 0
    n_errors: int = 0
    errors_by_code: dict[str, int] = field(default_factory=dict)
    n_compared: int = 0  # scored cases with a production score, this run and earlier ones
    mean_abs_diff: float | None = None  # weighted: an estimate for all eligible cases
    max_abs_diff: float | None = None
    n_beyond_case_tolerance: int = 0
    n_flips: int = 0
    flip_rate: float | None = None  # weighted, like mean_abs_diff
    mean_abs_diff_ci: tuple[float, float] | None = None  # 95%, effective sample size
    flip_rate_ci: tuple[float, float] | None = None  # 95% Wilson, effective sample size
    tolerance: dict[str, float] = field(default_factory=dict)
    within_tolerance: bool | None = None
    saliency_maps: int = 0
    seconds: float = 0.0
    images_per_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_device(text: str) -> str:
    """auto -> cuda when a GPU is visible, else cpu; cuda without a GPU is a clear error."""
    import torch

    text = (text or "auto").lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return "cpu"
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InvalidInputError(
                "--device cuda: no CUDA GPU is visible to torch here. Fix: --device cpu (or auto)"
            )
        return text
    raise InvalidInputError(f"--device {text!r}: use auto, cpu or cuda")


class NoRescoringSpecError(InvalidInputError):
    """The model declares no re-scoring spec (and is not a shipped demo model)."""


def resolve_spec(model: AIModel | Any, spec: Path | str | None) -> AdapterSpec:
    """Spec file: ``spec`` (--spec), else the card's [rescoring] spec, else the shipped demo spec.

    ``model`` is an AIModel row or anything with its ``name`` and ``card`` (e.g. the monitor
    runner's ModelInfo)."""
    if spec is not None:
        return load_spec(Path(spec))
    card_spec = ((getattr(model, "card", None) or {}).get("rescoring") or {}).get("spec")
    if card_spec:
        return load_spec(Path(card_spec))
    from models.demo import spec_path

    demo = spec_path(model.name)
    if demo is None:
        raise NoRescoringSpecError(
            f"model {model.name!r} has no re-scoring spec. Fix: pass --spec FILE.toml, or add "
            '[rescoring] spec = "/path/to/spec.toml" to its model card'
        )
    return load_spec(demo)


@dataclass(frozen=True)
class _Named:
    name: str
    card: dict[str, Any] = field(default_factory=dict)


def declared_tolerance(
    model: AIModel | Any | str, spec: Path | str | None = None
) -> dict[str, float] | None:
    """The tolerance a model's re-scoring spec declares (``[rescoring.tolerance]``; keys left
    out take the AdapterSpec defaults 0.03 / 0.10 / 0.05), for monitors and pages.

    ``model``: an AIModel row, anything with ``name`` and ``card`` (the monitor runner's
    ModelInfo), or a model name; ``spec``: a spec file overriding the card's. None when the
    model has no spec at all; a spec that is declared but unreadable raises InvalidInputError
    (a misconfiguration must not silently fall back to another tolerance)."""
    if isinstance(model, str):
        model = _Named(model)
    try:
        resolved = resolve_spec(model, spec)
    except NoRescoringSpecError:
        return None
    return {
        "mean_abs": resolved.tolerance_mean_abs,
        "case_abs": resolved.tolerance_case_abs,
        "flip_rate": resolved.tolerance_flip_rate,
    }


def case_tolerance(
    model: AIModel | Any | str, spec: Path | str | None = None, *, default: float = 0.02
) -> float:
    """The per-case score tolerance to give ``monitors.rescoring.rescoring_agreement``
    (``tolerance=``): the spec's ``case_abs``, else ``default`` (the monitors' 0.02). The monitor
    counts cases whose |difference| exceeds it, so a model whose re-run legitimately differs by
    up to 0.10 per case is not flagged by a stricter generic default."""
    tol = declared_tolerance(model, spec)
    return tol["case_abs"] if tol else default


def _age_band(age: Any) -> str:
    if age is None or pd.isna(age):
        return "unknown"
    band = "unknown"
    for lo, name in AGE_EDGES:
        if age >= lo:
            band = name
    return band


def load_cases(engine: Engine, model: AIModel, since: date | None) -> pd.DataFrame:
    """Every study with a production score of ``model``, its reference label and strata."""
    with session_scope(engine) as s:
        q = (
            select(
                Study.id,
                Study.study_uid,
                Study.accession,
                Study.site_code,
                Study.exam_started_at,
                Study.age_at_study,
                AIResult.score,
                AIResult.call,
                AIResult.received_at,
            )
            .join(AIResult, AIResult.study_id == Study.id)
            .where(AIResult.model_id == model.id, AIResult.score.is_not(None))
        )
        if since is not None:
            q = q.where(
                Study.exam_started_at >= datetime(since.year, since.month, since.day, tzinfo=UTC)
            )
        rows = s.exec(q).all()
        labels = dict(
            s.exec(
                select(FinalRead.study_id, FinalRead.label).where(
                    FinalRead.finding == model.finding, FinalRead.is_current.is_(True)
                )
            ).all()
        )
    cols = ["study_id", "study_uid", "accession", "site", "exam_at", "age", "score", "call", "recv"]
    df = pd.DataFrame([tuple(r) for r in rows], columns=cols)
    if df.empty:
        return df.assign(label=[], discordant=[], period=[], subgroup=[], ai_call=[])
    df["ai_call"] = df["score"] >= model.operating_threshold
    df["label"] = df["study_id"].map(labels)
    known = df["label"].isin(["positive", "negative"])
    df["discordant"] = known & (df["ai_call"] != (df["label"] == "positive"))
    when = df["exam_at"].where(df["exam_at"].notna(), df["recv"])
    df["period"] = [w.strftime("%Y-%m") if isinstance(w, datetime) else "unknown" for w in when]
    df["subgroup"] = [_age_band(a) for a in df["age"]]
    return df


class CaseImages:
    """Map-style dataset: case i -> (i, preprocessed tensor or None, error text)."""

    def __init__(self, cases: list[tuple[str | None, str | None]], source: ImageSource, spec):
        self.cases, self.source, self.prep = cases, source, spec.preprocess

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, i: int):
        uid, acc = self.cases[i]
        try:
            return i, self.prep.apply(self.source.read(uid, acc)), ""
        except CaseError as exc:
            return i, None, str(exc)
        except Exception as exc:  # a broken case must never stop the job: record it
            return i, None, f"unexpected_error: {type(exc).__name__}: {exc}"


def collate(items):
    import torch

    ok = [(i, x) for i, x, _ in items if x is not None]
    errors = [(i, e) for i, x, e in items if x is None]
    idx = [i for i, _ in ok]
    batch = torch.stack([x for _, x in ok]) if ok else torch.empty(0)
    return idx, batch, errors


def _lower_priority(_worker_id: int) -> None:
    """Workers yield the CPU to the forward pass: on a CPU-bound machine their decoding fills
    the gaps instead of pre-empting the model's compute threads (which then stall each other)."""
    import contextlib
    import os

    with contextlib.suppress(OSError):  # not permitted here: run at normal priority
        os.nice(10)


def make_loader(dataset, batch_size: int, workers: int, device: str):
    from torch.utils.data import DataLoader

    return DataLoader(
        dataset,
        worker_init_fn=_lower_priority if workers and device == "cpu" else None,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=device.startswith("cuda"),
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )


def default_workers(device: str, n_cases: int, batch_size: int) -> int:
    """CUDA: several workers, so the GPU never waits for the CPU. CPU: the forward pass already
    uses every core; fetching and decoding a case costs about 5% of its forward pass, while a
    worker process pre-empting the model's compute threads costs more (bench/README.md, models),
    so small machines decode in-process and only machines with cores to spare get workers.
    None for tiny jobs (starting processes costs more than it saves)."""
    import os

    cores = os.cpu_count() or 1
    if n_cases <= 2 * batch_size:
        return 0
    if device.startswith("cuda"):
        return min(8, cores)
    return 0 if cores <= 4 else 2


def run_rescore(
    engine: Engine,
    settings: Settings,
    opts: RescoreOptions,
    *,
    spec: AdapterSpec | None = None,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> RescoreSummary:
    """Run one job; ``spec`` overrides the resolved spec (a test's deliberately wrong window)."""
    import torch

    if opts.sample is not None and opts.fraction is not None:
        raise InvalidInputError("give --sample N or --fraction F, not both")
    if opts.fraction is not None and not 0 < opts.fraction <= 1:
        raise InvalidInputError(f"--fraction must be in (0, 1], got {opts.fraction}")
    if opts.batch_size < 1:
        raise InvalidInputError("--batch-size must be at least 1")
    from models.registry import get_model

    with session_scope(engine) as s:
        model = get_model(s, opts.model)
    spec = spec or resolve_spec(model, opts.spec)
    device = resolve_device(opts.device)
    source = open_source(opts.source)
    adapter = make_adapter(spec, opts.adapter).load(device)
    model_hash = adapter.sha256
    run_id = f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    summary = RescoreSummary(run_id, model.name, device, model_hash, source.describe())
    summary.tolerance = {
        "mean_abs": spec.tolerance_mean_abs,
        "case_abs": spec.tolerance_case_abs,
        "flip_rate": spec.tolerance_flip_rate,
    }
    t_start = time.perf_counter()

    cases = load_cases(engine, model, opts.since)
    if opts.fraction is not None:
        n = max(1, round(opts.fraction * len(cases)))
    else:
        n = opts.sample if opts.sample is not None else min(len(cases), 200)
    sample = stratified_sample(cases, n, seed=opts.seed, discordant_factor=opts.discordant_factor)
    summary.n_selected = len(sample)
    with session_scope(engine) as s:
        existing = {
            r.study_id: r
            for r in s.exec(
                select(RescoreResult).where(
                    RescoreResult.model_id == model.id, RescoreResult.model_hash == model_hash
                )
            ).all()
        }
    done = {sid for sid, r in existing.items() if r.error is None}
    todo = sample[~sample["study_id"].isin(done)].reset_index(drop=True)
    summary.n_skipped = len(sample) - len(todo)
    if on_start:
        on_start(len(todo))

    workers = (
        opts.workers
        if opts.workers is not None
        else default_workers(device, len(todo), opts.batch_size)
    )
    dataset = CaseImages(list(zip(todo["study_uid"], todo["accession"], strict=True)), source, spec)
    loader = make_loader(dataset, opts.batch_size, workers, device)
    sal_dir = Path(settings.data_dir) / "saliency" / model.name / run_id
    threshold = model.operating_threshold
    errors: Counter[str] = Counter()
    n_images, infer_s = 0, 0.0
    for idx, batch, errs in loader:
        now = utcnow()
        rows: list[dict[str, Any]] = []
        for i, err in errs:
            errors[err.split(":", 1)[0]] += 1
            rows.append({"i": i, "error": err})
        if idx:
            t0 = time.perf_counter()
            x = batch.to(device, non_blocking=True)
            probs = adapter.score_batch(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            probs = probs.cpu().numpy()
            dt = time.perf_counter() - t0
            infer_s += dt
            n_images += len(idx)
            sal_want = []
            for k, (i, p) in enumerate(zip(idx, probs, strict=True)):
                case = todo.iloc[i]
                prod = float(case["score"])
                label = case["label"]
                re_call = bool(p >= threshold)
                disagree = label in ("positive", "negative") and (
                    bool(case["ai_call"]) != (label == "positive")
                    or re_call != (label == "positive")
                )
                rows.append(
                    {
                        "i": i,
                        "rescore_score": float(p),
                        "production_score": prod,
                        "difference": float(p) - prod,
                        "call_flip": re_call != bool(case["ai_call"]),
                        "runtime_ms": dt * 1000 / len(idx),
                    }
                )
                if disagree and opts.saliency and spec.saliency_layer:
                    sal_want.append((k, len(rows) - 1))
            if sal_want:
                from models.saliency import grad_cam, save_overlay

                ks = [k for k, _ in sal_want]
                cams = grad_cam(adapter.module, x[ks], spec.saliency_layer).numpy()
                pre = spec.preprocess
                img01 = (x[ks, 0].detach().cpu().numpy() * pre.std + pre.mean).clip(0, 1)
                for (_, r), cam, im in zip(sal_want, cams, img01, strict=True):
                    sid = int(todo.iloc[rows[r]["i"]]["study_id"])
                    path = save_overlay(im, cam, sal_dir / f"study-{sid}.png")
                    rows[r]["saliency_path"] = str(path)
                    summary.saliency_maps += 1
        _store(engine, rows, todo, model.id, model_hash, run_id, device, now, existing)
        summary.n_scored += len(idx)
        summary.n_errors += len(errs)
        if on_batch:
            on_batch(len(idx) + len(errs))
    summary.errors_by_code = dict(errors)
    summary.seconds = round(time.perf_counter() - t_start, 3)
    summary.images_per_s = round(n_images / infer_s, 1) if infer_s > 0 else None
    weights = dict(zip(sample["study_id"], sample["weight"], strict=True)) if len(sample) else {}
    _agreement(engine, summary, model.id, model_hash, weights, spec)
    with session_scope(engine) as s:
        record(
            s,
            actor=opts.actor,
            action="rescore.run",
            target=f"model:{model.name}",
            detail=summary.as_dict(),
        )
    return summary


def _store(engine, rows, todo, model_id, model_hash, run_id, device, now, existing) -> None:
    """Write one batch's results (updating earlier error rows of the same case and hash)."""
    with session_scope(engine) as s:
        for row in rows:
            case = todo.iloc[row.pop("i")]
            sid = int(case["study_id"])
            values = {
                "run_id": run_id,
                "device": device,
                "scored_at": now,
                "production_score": float(case["score"]),
                "rescore_score": None,
                "difference": None,
                "call_flip": None,
                "runtime_ms": None,
                "error": None,
                "saliency_path": None,
                **row,
            }
            prior = existing.get(sid)
            if prior is not None:
                obj = s.get(RescoreResult, prior.id)
                for k, v in values.items():
                    setattr(obj, k, v)
            else:
                obj = RescoreResult(
                    study_id=sid, model_id=model_id, model_hash=model_hash, **values
                )
            s.add(obj)


def _agreement(engine, summary: RescoreSummary, model_id: int, model_hash: str, weights, spec):
    """Agreement over every sampled case this hash has scored (this run and resumed ones).

    Mean |difference| and flip rate are weighted by the sampling weights: estimates for all
    eligible cases, not for the sample enriched with (near-threshold) discordant cases. Counts
    (flips, cases beyond case_abs) and the largest difference are of the sample itself."""
    with session_scope(engine) as s:
        rows = s.exec(
            select(RescoreResult.study_id, RescoreResult.difference, RescoreResult.call_flip).where(
                RescoreResult.model_id == model_id,
                RescoreResult.model_hash == model_hash,
                RescoreResult.error.is_(None),
                RescoreResult.difference.is_not(None),
            )
        ).all()
    rows = [r for r in rows if r[0] in weights]
    diffs = np.array([abs(d) for _, d, _ in rows], dtype=float)
    flips = np.array([bool(f) for _, _, f in rows], dtype=bool)
    w = np.array([weights[sid] for sid, _, _ in rows], dtype=float)
    summary.n_compared = len(diffs)
    if len(diffs) == 0:
        return
    summary.mean_abs_diff = round(float(np.average(diffs, weights=w)), 5)
    summary.max_abs_diff = round(float(diffs.max()), 5)
    summary.n_beyond_case_tolerance = int((diffs > spec.tolerance_case_abs).sum())
    summary.n_flips = int(flips.sum())
    summary.flip_rate = round(float(np.average(flips, weights=w)), 5)
    # uncertainty: Kish effective sample size of the weighted sample, 95% intervals
    n_eff = float(w.sum() ** 2 / (w**2).sum())
    z = 1.959964
    m = float(np.average(diffs, weights=w))
    sd = float(np.sqrt(np.average((diffs - m) ** 2, weights=w)))
    half = z * sd / np.sqrt(n_eff) if n_eff > 1 else float("inf")
    summary.mean_abs_diff_ci = (round(max(0.0, m - half), 5), round(m + half, 5))
    p = float(np.average(flips, weights=w))
    centre = (p + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
    span = z * np.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff * n_eff)) / (1 + z * z / n_eff)
    summary.flip_rate_ci = (round(max(0.0, centre - span), 5), round(min(1.0, centre + span), 5))
    # disagreement needs evidence: the interval lies above the tolerance (as the monitors judge),
    # so a small sample's chance flips near the threshold do not raise it
    summary.within_tolerance = not (
        summary.mean_abs_diff_ci[0] > spec.tolerance_mean_abs
        or summary.flip_rate_ci[0] > spec.tolerance_flip_rate
    )
