"""The re-scoring job on the demo model: reproduces the vendor's scores within the declared
tolerance, catches a wrong preprocessing, records per-case errors, resumes, samples by strata,
writes Grad-CAM maps; and the CLI around it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from models_fixtures import store_truth
from PIL import Image
from pydicom.encaps import encapsulate
from sqlmodel import select
from typer.testing import CliRunner

from models.adapters import load_spec
from models.demo import spec_path
from models.registry import add_cards
from models.rescore import RescoreOptions, load_cases, run_rescore
from models.sampling import allocate, stratified_sample
from models.truth import studies_from_truth
from vigil.cli.app import app
from vigil.simulate import SimulationConfig, simulate, truth_frame
from vigil.simulate.dicom import write_studies
from vigil.store.db import open_store, session_scope
from vigil.store.tables import AIModel, AuditLog, RescoreResult, Study

CARDS = {
    "neurovue-ich": 'name = "neurovue-ich"\nfinding = "ich"\nversion = "3.1.2"\n'
    "operating_threshold = 0.5\n",
    "lungsight-nodule": 'name = "lungsight-nodule"\nfinding = "lung_nodule"\n'
    'version = "2.3.1"\noperating_threshold = 0.4\n',
}


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory) -> Path:
    """A small simulated network (``vigil simulate``)."""
    out = tmp_path_factory.mktemp("sim")
    simulate(SimulationConfig(studies=400, months=2, seed=11, out=out, force=True))
    return out


@pytest.fixture(scope="module")
def sim(sim_dir) -> pd.DataFrame:
    return truth_frame(sim_dir)


@pytest.fixture(scope="module")
def ich(sim, tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """The head-CT studies scored by neurovue-ich and their DICOM files (rendered once)."""
    df = sim[sim["model"] == "neurovue-ich"].head(120).reset_index(drop=True)
    folder = tmp_path_factory.mktemp("ich-dicom")
    write_studies(studies_from_truth(df, "neurovue-ich"), folder)
    return df, folder


def _register(engine, tmp_path: Path, name: str) -> None:
    card = tmp_path / f"{name}.toml"
    card.write_text(CARDS[name])
    add_cards(engine, [card], actor="test")


def _results(engine) -> pd.DataFrame:
    with session_scope(engine) as s:
        rows = s.exec(select(RescoreResult, Study.study_uid).join(Study)).all()
    return pd.DataFrame(
        [{**r.model_dump(), "study_uid": uid} for r, uid in rows],
        columns=[*RescoreResult.model_fields, "study_uid"],
    )


def test_reproduces_vendor_scores_within_tolerance(engine, settings, ich, tmp_path) -> None:
    df, folder = ich
    _register(engine, tmp_path, "neurovue-ich")
    store_truth(engine, df)
    summary = run_rescore(
        engine, settings,
        RescoreOptions(model="neurovue-ich", source=f"folder:{folder}", sample=120, workers=0),
    )  # fmt: skip
    assert summary.n_scored == 120 and summary.n_errors == 0
    # independent check against the truth table (the scores the vendor sent), not the summary
    res = _results(engine).merge(df[["study_uid", "ai_score"]], on="study_uid")
    diff = (res["rescore_score"] - res["ai_score"]).abs()
    spec = load_spec(spec_path("neurovue-ich"))
    assert diff.mean() <= spec.tolerance_mean_abs
    flips = (res["rescore_score"] >= 0.5) != (res["ai_score"] >= 0.5)
    assert flips.mean() <= spec.tolerance_flip_rate
    assert summary.within_tolerance is True
    assert summary.mean_abs_diff == pytest.approx(diff.mean(), abs=1e-4)
    # every case sampled: weights 1, so the intervals are the textbook ones (statsmodels, scipy)
    from scipy import stats as sps
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(int(flips.sum()), len(flips), method="wilson")
    assert summary.flip_rate_ci == pytest.approx((lo, hi), abs=1e-4)
    half = sps.norm.ppf(0.975) * diff.std(ddof=0) / np.sqrt(len(diff))
    assert summary.mean_abs_diff_ci == pytest.approx(
        (diff.mean() - half, diff.mean() + half), abs=1e-4
    )
    assert np.corrcoef(res["rescore_score"], res["ai_score"])[0, 1] > 0.99
    # stored per case: production score, difference, runtime, device, hash
    assert (res["production_score"] - res["ai_score"]).abs().max() < 1e-9
    np.testing.assert_allclose(res["difference"], res["rescore_score"] - res["production_score"])
    assert (res["runtime_ms"] > 0).all() and set(res["device"]) == {"cpu"}
    assert set(res["model_hash"]) == {summary.model_hash}
    with session_scope(engine) as s:
        audit = s.exec(select(AuditLog).where(AuditLog.action == "rescore.run")).all()
    assert len(audit) == 1 and audit[0].detail["n_scored"] == 120
    # Grad-CAM maps for exactly the discordant cases (recomputed from the truth table)
    res = res.merge(df[["study_uid", "rad_label_final"]], on="study_uid")
    lab = res["rad_label_final"]
    known = lab.isin(["positive", "negative"])
    pos = lab == "positive"
    disc = known & (((res["ai_score"] >= 0.5) != pos) | ((res["rescore_score"] >= 0.5) != pos))
    assert disc.sum() > 0 and summary.saliency_maps == disc.sum()
    assert res.loc[disc, "saliency_path"].notna().all()
    assert res.loc[~disc, "saliency_path"].isna().all()
    for p in res.loc[disc, "saliency_path"]:
        path = Path(p)
        assert path.is_relative_to(settings.data_dir) and path.suffix == ".png"
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size == (256, 256)


def test_lung_model_reproduces_too(sim, tmp_path, monkeypatch) -> None:
    from vigil.settings import get_settings

    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIGIL_DATABASE_URL", f"sqlite:///{tmp_path / 'v.sqlite'}")
    get_settings.cache_clear()
    settings = get_settings()
    engine = open_store(settings)
    df = sim[sim["model"] == "lungsight-nodule"].head(80).reset_index(drop=True)
    write_studies(studies_from_truth(df, "lungsight-nodule"), tmp_path / "dicom")
    _register(engine, tmp_path, "lungsight-nodule")
    store_truth(engine, df)
    summary = run_rescore(
        engine, settings,
        RescoreOptions(model="lungsight-nodule", source=f"folder:{tmp_path / 'dicom'}",
                       sample=80, workers=0),
    )  # fmt: skip
    res = _results(engine).merge(df[["study_uid", "ai_score"]], on="study_uid")
    assert len(res) == 80
    assert (res["rescore_score"] - res["ai_score"]).abs().mean() <= summary.tolerance["mean_abs"]
    assert summary.within_tolerance is True


@pytest.fixture
def sqlite_store(tmp_path, monkeypatch):
    """SQLite only: the job's logic does not depend on the backend (the test above runs both)."""
    from vigil.settings import get_settings

    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIGIL_DATABASE_URL", f"sqlite:///{tmp_path / 'v.sqlite'}")
    get_settings.cache_clear()
    settings = get_settings()
    engine = open_store(settings)
    _register(engine, tmp_path, "neurovue-ich")
    return engine, settings


def test_wrong_window_is_caught(sqlite_store, ich) -> None:
    engine, settings = sqlite_store
    df, folder = ich
    store_truth(engine, df)
    spec = load_spec(spec_path("neurovue-ich")).with_preprocess(
        window_level=400.0, window_width=2000.0
    )
    opts = RescoreOptions(model="neurovue-ich", source=f"folder:{folder}", sample=60, workers=0)
    summary = run_rescore(engine, settings, opts, spec=spec)
    assert summary.within_tolerance is False
    assert summary.mean_abs_diff > spec.tolerance_mean_abs
    assert summary.flip_rate > spec.tolerance_flip_rate
    res = _results(engine).merge(df[["study_uid", "ai_score"]], on="study_uid")
    assert (res["rescore_score"] - res["ai_score"]).abs().mean() > spec.tolerance_mean_abs


def test_errors_recorded_per_case_and_job_continues(sqlite_store, ich, tmp_path) -> None:
    engine, settings = sqlite_store
    df, _folder = ich
    sub = df.iloc[:30]
    store_truth(engine, sub)
    work = tmp_path / "broken"
    paths = write_studies(studies_from_truth(sub, "neurovue-ich"), work)
    # 1: missing from the folder; 2: a JPEG 2000 transfer syntax; 3: truncated pixel data
    paths[0].unlink()
    ds = pydicom.dcmread(paths[1])
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(200)])  # a JPEG 2000 codestream
    ds.save_as(paths[1], enforce_file_format=True)
    ds = pydicom.dcmread(paths[2])
    ds.PixelData = ds.PixelData[:100]
    ds.save_as(paths[2], enforce_file_format=True)
    summary = run_rescore(
        engine, settings,
        RescoreOptions(model="neurovue-ich", source=f"folder:{work}", sample=30, workers=0,
                       batch_size=8),
    )  # fmt: skip
    assert summary.errors_by_code == {
        "study_missing": 1, "unsupported_transfer_syntax": 1, "unreadable_pixel_data": 1,
    }  # fmt: skip
    res = _results(engine).set_index("study_uid")
    assert res.loc[sub.study_uid[0], "error"].startswith("study_missing")
    assert "JPEG 2000" in res.loc[sub.study_uid[1], "error"]
    assert res.loc[sub.study_uid[2], "error"].startswith("unreadable_pixel_data")
    assert res["rescore_score"].notna().sum() == 27
    # the next run retries only the failed cases (files fixed meanwhile) and updates their rows
    write_studies(studies_from_truth(sub.iloc[:3], "neurovue-ich"), work)
    again = run_rescore(
        engine, settings,
        RescoreOptions(model="neurovue-ich", source=f"folder:{work}", sample=30, workers=0),
    )  # fmt: skip
    assert (again.n_skipped, again.n_scored, again.n_errors) == (27, 3, 0)
    assert len(_results(engine)) == 30 and _results(engine)["error"].isna().all()


class _Interrupt(Exception):
    pass


def test_resumable_after_interruption(sqlite_store, ich) -> None:
    engine, settings = sqlite_store
    df, folder = ich
    store_truth(engine, df)
    opts = RescoreOptions(model="neurovue-ich", source=f"folder:{folder}", sample=50, seed=3,
                          workers=0, batch_size=16)  # fmt: skip
    seen = []

    def stop_after_two(k: int) -> None:
        seen.append(k)
        if len(seen) == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        run_rescore(engine, settings, opts, on_batch=stop_after_two)
    first = _results(engine)
    assert len(first) == 32  # two batches committed before the interruption
    resumed = run_rescore(engine, settings, opts)
    assert (resumed.n_selected, resumed.n_skipped, resumed.n_scored) == (50, 32, 18)
    after = _results(engine)
    assert len(after) == 50 and after["study_id"].is_unique
    kept = after.set_index("id").loc[first["id"], "rescore_score"]
    np.testing.assert_array_equal(kept.to_numpy(), first["rescore_score"].to_numpy())
    # a full rerun with the same seed finds everything done
    assert run_rescore(engine, settings, opts).n_skipped == 50


def test_sample_is_stratified_seeded_and_oversamples_discordant(sqlite_store, ich) -> None:
    engine, _ = sqlite_store
    df, _ = ich
    store_truth(engine, df)
    with session_scope(engine) as s:
        model = s.exec(select(AIModel)).one()
    cases = load_cases(engine, model, None)
    assert len(cases) == 120
    # discordant = AI call differs from the radiologist's label (independent recomputation)
    truth = df.set_index("study_uid")
    ai = truth.loc[cases.study_uid, "ai_score"].to_numpy() >= 0.5
    lab = truth.loc[cases.study_uid, "rad_label_final"].to_numpy()
    known = np.isin(lab, ["positive", "negative"])
    np.testing.assert_array_equal(cases["discordant"], known & (ai != (lab == "positive")))
    share = cases["discordant"].mean()
    assert 0 < share < 0.34
    a = stratified_sample(cases, 30, seed=5, discordant_factor=3.0)
    b = stratified_sample(cases, 30, seed=5, discordant_factor=3.0)
    c = stratified_sample(cases, 30, seed=6, discordant_factor=3.0)
    assert list(a.study_id) == list(b.study_id) and list(a.study_id) != list(c.study_id)
    assert len(a) == 30 and a.study_id.is_unique
    want = 30 * 3 * share  # three times their share, capped by how many there are
    n_disc = int(a["discordant"].sum())
    assert min(cases["discordant"].sum(), np.floor(want)) <= n_disc <= np.ceil(want)
    assert n_disc / 30 > share  # oversampled
    # the weights make the sample stand for every eligible case, class by class
    assert a["weight"].sum() == pytest.approx(len(cases))
    for flag in (True, False):
        part, pool = a[a["discordant"] == flag], cases[cases["discordant"] == flag]
        assert part["weight"].sum() == pytest.approx(len(pool))
    assert a.loc[a["discordant"], "weight"].mean() < a.loc[~a["discordant"], "weight"].mean()
    # every site and month in the data is represented
    assert set(a["site"]) == set(cases["site"]) and set(a["period"]) == set(cases["period"])
    # --since keeps the studies examined on or after that date (counted from the truth table)
    cut = df["exam_started_at"].iloc[60].date()
    later = load_cases(engine, model, cut)
    assert len(later) == int((df["exam_started_at"].dt.date >= cut).sum()) < len(cases)


@hyp_settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=12), st.integers(0, 300))
def test_allocate_properties(sizes, n) -> None:
    out = allocate(np.array(sizes), n)
    assert out.sum() == min(n, sum(sizes))
    assert (out <= np.array(sizes)).all() and (out >= 0).all()
    nonempty = sum(1 for s in sizes if s > 0)
    if n >= nonempty:
        assert all(o >= 1 for o, s in zip(out, sizes, strict=True) if s > 0)


def test_grad_cam_points_at_the_lesion() -> None:
    """For an obvious lesion the map's peak lies on the lesion (located independently)."""
    import torch

    from models.adapters import make_adapter
    from models.saliency import grad_cam
    from vigil.simulate.dicom import StudyImage, quantise_like_dicom, render_hu

    spec = load_spec(spec_path("neurovue-ich"))
    adapter = make_adapter(spec).load("cpu")
    centres, images = [], []
    for seed in range(8):
        study = StudyImage("1.2.3", "A1", "HEAD", evidence=4.0, seed=seed, manufacturer="SIEMENS")
        faint = StudyImage("1.2.3", "A1", "HEAD", -5.0, seed, manufacturer="SIEMENS")
        lesion = render_hu(study) - render_hu(faint)  # same anatomy and noise: only the lesion
        centres.append(np.unravel_index(np.argmax(lesion), lesion.shape))
        images.append(spec.preprocess.apply(quantise_like_dicom(render_hu(study))))
    cams = grad_cam(adapter.module, torch.stack(images), spec.saliency_layer).numpy()
    hits = 0
    for (cy, cx), cam in zip(centres, cams, strict=True):
        py, px = np.unravel_index(np.argmax(cam), cam.shape)
        hits += int(np.hypot(py - cy, px - cx) <= 6)
    assert hits >= 7
    assert torch.is_grad_enabled()


def test_cli_rescore_renders_only_the_sampled_studies(settings, sim, sim_dir, tmp_path) -> None:
    """The demo path: `--source simulated:RUN` renders DICOM files for the sample only."""
    df = sim[sim["model"] == "neurovue-ich"].iloc[:60]
    engine = open_store(settings)
    store_truth(engine, df)
    runner = CliRunner()
    card = tmp_path / "card.toml"
    card.write_text(CARDS["neurovue-ich"])
    assert runner.invoke(app, ["models", "add", str(card)]).exit_code == 0
    res = runner.invoke(
        app,
        ["rescore", "--model", "neurovue-ich", "--sample", "40", "--source",
         f"simulated:{sim_dir}", "--device", "cpu", "--seed", "2"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "40 scored" in res.output and "within tolerance" in res.output
    rendered = {p.name for p in (sim_dir / "dicom").iterdir()}
    assert rendered == set(_results(engine)["study_uid"]) and len(rendered) == 40
    assert len(sim) > 300  # the network had far more studies than were rendered
    res = runner.invoke(app, ["rescore", "--model", "neurovue-ich", "--source", "ftp://x"])
    assert res.exit_code == 1 and "folder:PATH, dicomweb:URL" in res.output
    res = runner.invoke(
        app,
        ["rescore", "--model", "neurovue-ich", "--since", "2100-01-01", "--source",
         f"folder:{tmp_path}"],
    )  # fmt: skip
    assert res.exit_code == 0 and "no eligible cases" in res.output
    res = runner.invoke(app, ["rescore", "--model", "nope", "--source", f"folder:{tmp_path}"])
    assert res.exit_code == 1 and "no model named 'nope'" in res.output


def test_device_cuda_without_gpu_is_a_clear_error(sqlite_store, ich) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present here")
    engine, settings = sqlite_store
    _, folder = ich
    with pytest.raises(Exception, match="no CUDA GPU is visible"):
        run_rescore(
            engine, settings,
            RescoreOptions(model="neurovue-ich", source=f"folder:{folder}", device="cuda"),
        )  # fmt: skip


def test_declared_tolerance_comes_from_the_spec(tmp_path) -> None:
    from models.rescore import declared_tolerance

    spec = load_spec(spec_path("neurovue-ich"))
    tol = declared_tolerance(AIModel(name="neurovue-ich", finding="ich"))
    assert tol == {
        "mean_abs": spec.tolerance_mean_abs,
        "case_abs": spec.tolerance_case_abs,
        "flip_rate": spec.tolerance_flip_rate,
    }
    assert declared_tolerance(AIModel(name="vendor-x", finding="ich")) is None
    custom = tmp_path / "spec.toml"
    custom.write_text(
        '[rescoring]\nadapter = "module"\n[rescoring.preprocess]\nwindow_level = 40\n'
        "window_width = 80\n[rescoring.tolerance]\nmean_abs = 0.01\n"
    )
    card = {"rescoring": {"spec": str(custom)}}
    assert (
        declared_tolerance(AIModel(name="vendor-x", finding="ich", card=card))["mean_abs"] == 0.01
    )


def test_cli_fraction_samples_that_share_and_rejects_bad_values(sqlite_store, ich) -> None:
    engine, _ = sqlite_store
    df, folder = ich
    store_truth(engine, df.iloc[:40])
    runner = CliRunner()
    base = ["rescore", "--model", "neurovue-ich", "--source", f"folder:{folder}",
            "--device", "cpu", "--no-saliency"]  # fmt: skip
    res = runner.invoke(app, [*base, "--fraction", "0.25"])
    assert res.exit_code == 0, res.output
    assert "10 sampled" in res.output  # 0.25 x 40 eligible studies
    assert len(_results(engine)) == 10
    # the whole population: the 10 already scored are skipped, the other 30 scored
    res = runner.invoke(app, [*base, "--fraction", "1"])
    assert res.exit_code == 0, res.output
    assert "40 sampled, 10 already scored, 30 scored" in res.output
    assert set(_results(engine)["study_uid"]) == set(df["study_uid"].iloc[:40])
    # a tiny share still re-scores one case rather than none
    res = runner.invoke(app, [*base, "--fraction", "0.001", "--seed", "9"])
    assert res.exit_code == 0 and "1 sampled" in res.output, res.output
    with session_scope(engine) as s:
        runs = len(s.exec(select(AuditLog).where(AuditLog.action == "rescore.run")).all())
    for bad, message in [
        (["--fraction", "0"], "--fraction must be in (0, 1], got 0.0"),
        (["--fraction", "1.5"], "--fraction must be in (0, 1], got 1.5"),
        (["--fraction", "-0.2"], "--fraction must be in (0, 1], got -0.2"),
        (["--sample", "5", "--fraction", "0.5"], "give --sample N or --fraction F, not both"),
    ]:
        res = runner.invoke(app, [*base, *bad])
        assert res.exit_code == 1, (bad, res.output)
        assert message in res.output, (bad, res.output)
        assert "Traceback" not in res.output
    with session_scope(engine) as s:  # refused before any work: no run recorded, nothing scored
        assert len(s.exec(select(AuditLog).where(AuditLog.action == "rescore.run")).all()) == runs
    assert len(_results(engine)) == 40


def test_declared_tolerance_for_the_monitor_runner(tmp_path) -> None:
    """Usable from vigil.monitoring: a ModelInfo-like object (name, card), a name, a spec path."""
    from dataclasses import dataclass, field

    from models.rescore import case_tolerance, declared_tolerance
    from vigil.errors import InvalidInputError

    @dataclass
    class Info:  # the shape of vigil.monitoring.ModelInfo that matters here
        name: str
        card: dict = field(default_factory=dict)

    # the shipped demo spec declares case_abs = 0.10 (read the TOML independently)
    import tomllib

    demo = tomllib.loads(spec_path("neurovue-ich").read_text())["rescoring"]["tolerance"]
    assert demo == {"mean_abs": 0.03, "case_abs": 0.10, "flip_rate": 0.05}
    assert declared_tolerance(Info("neurovue-ich")) == demo
    assert declared_tolerance("neurovue-ich") == demo
    assert case_tolerance(Info("neurovue-ich")) == 0.10
    assert case_tolerance("lungsight-nodule") == 0.10
    # no spec at all: None, and the monitors' own default
    assert declared_tolerance("vendor-x") is None
    assert case_tolerance(Info("vendor-x")) == 0.02
    assert case_tolerance("vendor-x", default=0.05) == 0.05
    # the card's spec, or an explicit spec path (str or Path) overriding it; keys left out of
    # [rescoring.tolerance] take the spec defaults
    spec = tmp_path / "site.toml"
    spec.write_text(
        '[rescoring]\nadapter = "module"\n[rescoring.preprocess]\nwindow_level = 40\n'
        "window_width = 80\n[rescoring.tolerance]\ncase_abs = 0.07\n"
    )
    card = {"rescoring": {"spec": str(spec)}}
    assert case_tolerance(Info("vendor-x", card)) == 0.07
    assert declared_tolerance("neurovue-ich", str(spec)) == {
        "mean_abs": 0.03, "case_abs": 0.07, "flip_rate": 0.05,
    }  # fmt: skip
    assert case_tolerance("neurovue-ich", spec) == 0.07
    # a declared spec that is missing is a misconfiguration, not a silent fallback
    broken = {"rescoring": {"spec": str(tmp_path / "gone.toml")}}
    with pytest.raises(InvalidInputError, match="no such re-scoring spec"):
        case_tolerance(Info("vendor-x", broken))


def test_demo_agreement_script_on_a_simulator_run(sim_dir, sim) -> None:
    """`python -m models.demo.agreement` (the README's model-card figures) over a small run."""
    import subprocess
    import sys

    from models.demo.agreement import agreement

    a = agreement(sim_dir / "truth.parquet", "neurovue-ich")
    assert a["studies"] == int((sim["model"] == "neurovue-ich").sum()) > 100
    spec = load_spec(spec_path("neurovue-ich"))
    assert 0 < a["mean_abs"] <= spec.tolerance_mean_abs
    assert a["flip_rate"] <= spec.tolerance_flip_rate and a["threshold"] == 0.5
    assert a["mean_abs"] <= a["p99_abs"] <= a["max_abs"] < 0.5
    out = subprocess.run(
        [sys.executable, "-m", "models.demo.agreement", "--truth", str(sim_dir / "truth.parquet"),
         "--model", "lungsight-nodule"],
        capture_output=True, text=True, timeout=120, check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    n_lung = int((sim["model"] == "lungsight-nodule").sum())
    assert out.stdout.startswith(f"lungsight-nodule: {n_lung} studies, mean |diff| 0.0")


def test_case_tolerance_keeps_the_monitor_from_flagging_the_demo_model() -> None:
    """With the runner's ModelInfo, the declared 0.10 per case replaces the monitors' generic
    0.02, which re-run differences of the demo model's size (mean ~0.015) would exceed."""
    from models.rescore import case_tolerance
    from monitors.rescoring import DEFAULT_TOLERANCE, rescoring_agreement
    from vigil.monitoring import ModelInfo

    info = ModelInfo(name="neurovue-ich", finding="ich", operating_threshold=0.5)
    assert case_tolerance(ModelInfo(name="vendor-x", finding="ich")) == DEFAULT_TOLERANCE
    rng = np.random.default_rng(4)
    prod = rng.uniform(0.02, 0.98, 300)
    diff = rng.exponential(0.015, 300).clip(max=0.09) * rng.choice([-1, 1], 300)
    df = pd.DataFrame({"production_score": prod, "rescore_score": (prod + diff).clip(0, 1)})
    assert rescoring_agreement(df, threshold=0.5).disagrees is True  # the generic 0.02
    tol = case_tolerance(info)
    assert tol == 0.10
    assert rescoring_agreement(df, threshold=0.5, tolerance=tol).disagrees is False
