"""bench/bench_rescore.py runs as documented: a tiny CPU run prints both figures and the ratio,
and `--device cuda` without a GPU fails with one clear line (bench/README.md gives that command
for the GPU figure)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench" / "bench_rescore.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True, text=True, timeout=180, cwd=REPO,
    )  # fmt: skip


def test_cuda_without_a_gpu_fails_with_one_clear_line() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present here: the bench would run")
    res = _run("--device", "cuda", "--n", "8")
    assert res.returncode == 1
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert lines == [
        "error: --device cuda: no CUDA GPU is visible to torch here. Fix: --device cpu (or auto)"
    ]


def test_tiny_cpu_run_prints_baseline_pipeline_and_ratio() -> None:
    res = _run("--device", "cpu", "--n", "32", "--batch-size", "16", "--repeats", "1")
    assert res.returncode == 0, res.stderr
    assert "device cpu" in res.stdout
    base = re.search(r"baseline \(forward pass only\):\s+(\d+) images/s", res.stdout)
    pipe = re.search(r"pipeline \(fetch\+decode\+preprocess\+infer\):\s+(\d+) images/s", res.stdout)
    ratio = re.search(r"pipeline / baseline: ([\d.]+)%", res.stdout)
    assert base and pipe and ratio, res.stdout
    assert int(base.group(1)) > 0 and int(pipe.group(1)) > 0
    # the ratio printed is the two figures' ratio (rounded figures: loose tolerance)
    assert float(ratio.group(1)) == pytest.approx(
        100 * int(pipe.group(1)) / int(base.group(1)), rel=0.05, abs=1.0
    )
