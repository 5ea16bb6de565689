"""Re-scoring throughput: the whole pipeline vs the model's forward pass alone, same batch size.

    .venv/bin/python bench/bench_rescore.py [--device cpu|cuda|auto] [--n 1024] [--batch-size 64]
                                            [--workers K] [--repeats 3]

Renders ``--n`` head-CT studies as DICOM files into a temporary folder (not timed), then measures
in the same run, on the same device, with the demo model and the same batch size:

* baseline: forward passes only, over the already preprocessed images held in memory;
* pipeline: what ``vigil rescore`` does per case — fetch (read the file from the folder source),
  decode (DICOM -> HU), preprocess (window, resize, normalise) in DataLoader workers, then the
  forward pass (host-to-device copy included on CUDA).

Prints images/s for both and their ratio (target: pipeline >= 90% of baseline). The headline
pairs the two batch by batch (each pipeline batch timed right after the same batch's forward
pass), so both see the same machine load; whole-run figures with the DataLoader's workers follow.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # tests/models_fixtures.py: the studies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--n", type=int, default=1024, help="images per pass")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None, help="default: as vigil rescore")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--spec", type=Path, default=None, help="re-scoring spec (default: demo)")
    args = ap.parse_args()

    import torch
    from models_fixtures import synthetic_truth

    from models.adapters import load_spec, make_adapter
    from models.demo import spec_path
    from models.rescore import CaseImages, collate, default_workers, make_loader, resolve_device
    from models.sources import FolderSource
    from models.truth import studies_from_truth
    from vigil.simulate.dicom import write_studies

    device = resolve_device(args.device)  # --device cuda without a GPU: one line, exit 1
    spec = load_spec(args.spec or spec_path("neurovue-ich"))
    adapter = make_adapter(spec).load(device)
    workers = (
        args.workers
        if args.workers is not None
        else default_workers(device, args.n, args.batch_size)
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        df = synthetic_truth(args.n, "neurovue-ich", seed=1)
        write_studies(studies_from_truth(df, "neurovue-ich"), Path(tmp))
        render_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        source = FolderSource(Path(tmp))
        index_s = time.perf_counter() - t0
        cases = list(zip(df["study_uid"], df["accession"], strict=True))
        dataset = CaseImages(cases, source, spec)

        # baseline: forward only, preprocessed images already in memory (on the device)
        images = torch.stack([dataset[i][1] for i in range(len(dataset))])
        batches = [
            images[i : i + args.batch_size].to(device)
            for i in range(0, len(images), args.batch_size)
        ]

        def forward_only() -> float:
            t = time.perf_counter()
            for b in batches:
                adapter.score_batch(b)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return len(images) / (time.perf_counter() - t)

        def pipeline() -> float:
            loader = make_loader(dataset, args.batch_size, workers, device)
            t = time.perf_counter()
            n = 0
            for idx, batch, errors in loader:
                assert not errors, errors[:1]
                adapter.score_batch(batch.to(device, non_blocking=True))
                n += len(idx)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return n / (time.perf_counter() - t)

        def paired() -> tuple[float, float]:
            """Serial pipeline (no workers) and forward-only, timed batch by batch back to back,
            so both see the same machine load: robust on a shared machine."""
            tb = tp = 0.0
            for k, b in enumerate(batches):
                t = time.perf_counter()
                adapter.score_batch(b)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                tb += time.perf_counter() - t
                t = time.perf_counter()
                lo = k * args.batch_size
                _, x, _ = collate([dataset[i] for i in range(lo, lo + len(b))])
                adapter.score_batch(x.to(device))
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                tp += time.perf_counter() - t
            return len(images) / tb, len(images) / tp

        forward_only()  # warm-up (allocator, kernels)
        base, pipe, pairs = [], [], []
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            base.append(forward_only())
            pipe.append(pipeline())
            pairs.append(paired())
    b, p = max(base), max(pipe)
    pb, pp = sum(x for x, _ in pairs), sum(y for _, y in pairs)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"device {device}, torch threads {torch.get_num_threads()}"
    )
    print(f"setup: rendered {args.n} DICOM files in {render_s:.1f} s; folder index {index_s:.2f} s")
    ratio = pp / pb
    print(f"batch size {args.batch_size}, {args.repeats} runs of {args.n} images")
    print("paired, batch by batch (pipeline in-process, as vigil rescore runs on <= 4 CPU cores):")
    print(f"  baseline (forward pass only):             {pb / len(pairs):8.0f} images/s")
    print(f"  pipeline (fetch+decode+preprocess+infer): {pp / len(pairs):8.0f} images/s")
    print(
        f"  pipeline / baseline: {ratio:.1%} "
        f"({'meets' if ratio >= 0.9 else 'misses'} the 90% target)"
    )
    print(
        f"whole runs with a DataLoader of {workers} workers (best of {args.repeats}; noisy on a "
        "shared machine):"
    )
    print(f"  baseline {b:8.0f} images/s (runs: {', '.join(f'{x:.0f}' for x in base)})")
    print(
        f"  pipeline {p:8.0f} images/s (runs: {', '.join(f'{x:.0f}' for x in pipe)}); "
        f"ratio {p / b:.1%}"
    )


if __name__ == "__main__":
    from vigil.errors import VigilError

    try:
        main()
    except VigilError as exc:
        sys.exit(f"error: {exc}")
