"""The compiled HL7 hot path (setup.py, mypyc): in use where built, and the same as its source.

mypyc compiles the modules unchanged, but it enforces the type annotations at run time and some
corners of Python behave differently in C; so the build is held to the source's own results,
message by message, on the real samples, simulator messages and randomly damaged messages.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from connectors import built_modules, compiled_in_use, stale_build

# a stale build warns on import; these tests look at builds, stale ones included
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def _fake_build(folder: Path, names: list[str], stamp: bool = True) -> None:
    import importlib.machinery

    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    digests = {}
    for n in names:
        (folder / f"{n}.py").write_text(f"X = {n!r}\n")
        (folder / f"{n}{suffix}").write_bytes(b"")
        digests[n] = hashlib.sha256((folder / f"{n}.py").read_bytes()).hexdigest()
    if stamp:
        (folder / "_compiled.json").write_text(json.dumps(digests))


def test_fresh_build_is_used(tmp_path: Path) -> None:
    _fake_build(tmp_path, ["parse", "mapper"])
    (tmp_path / "events.py").write_text("")  # a module without a build is not listed
    assert built_modules(tmp_path) == ["mapper", "parse"]
    assert stale_build(tmp_path) == []


def test_one_edited_source_sends_every_built_module_to_source(tmp_path: Path) -> None:
    _fake_build(tmp_path, ["parse", "mapper", "phi"])
    (tmp_path / "mapper.py").write_text("X = 'edited'\n")
    assert stale_build(tmp_path) == ["mapper", "parse", "phi"]


def test_build_without_its_record_is_not_trusted(tmp_path: Path) -> None:
    _fake_build(tmp_path, ["parse"], stamp=False)
    assert stale_build(tmp_path) == ["parse"]
    (tmp_path / "_compiled.json").write_text("{not json")
    assert stale_build(tmp_path) == ["parse"]


def test_no_build_nothing_to_do(tmp_path: Path) -> None:
    (tmp_path / "parse.py").write_text("")
    assert built_modules(tmp_path) == [] and stale_build(tmp_path) == []


def test_what_is_built_is_what_runs() -> None:
    """Every compiled module of this checkout is loaded compiled (none shadowed, none stale);
    on CI the build must exist, so the benchmarks' figures are the compiled code's."""
    built = built_modules()
    for name in built:  # loaded by this test, whatever ran before it
        importlib.import_module(f"connectors.{name}")
    if os.environ.get("CI"):
        assert built, "CI: setup.py built no compiled module (is a C compiler installed?)"
    assert stale_build() == [], "stale build: run ./scripts/bootstrap.sh"
    if os.environ.get("VIGIL_CONNECTORS_SOURCE") != "1":
        assert compiled_in_use() == built


# -- the build against the source, message by message -------------------------------------------

_MAP_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[3])
from connectors.errors import MessageRejected
from connectors.framing import split_messages
from connectors.pipeline import Pipeline
from connectors.rows import flatten, fold, sqlite_utc_text, uid_only_studies
import connectors
from datetime import UTC, datetime
from vigil.settings import load_settings

pipe = Pipeline(load_settings(demo=True))
out, flat = [], []
for raw in split_messages(open(sys.argv[1], "rb").read()):
    try:
        m = pipe.handle(raw)
        flat.append(flatten(m))
        out.append(["ok", m.outcome, m.note, repr(flat[-1])])
    except MessageRejected as exc:
        out.append(["rejected", exc.reason_code, exc.reason, exc.sender, exc.control_id])
# what the store writer makes of them: one batch folded, and its timestamps as stored
now = datetime(2026, 1, 2, 3, 4, 5, 6789, tzinfo=UTC)
uid_keys = {(st[0], st[2]): (st[0], "uid:" + st[2]) for st in uid_only_studies(flat)}
b = fold(flat, uid_keys, {"known-model": 1}, now)
for row in b.studies.values():
    for col in ("ordered_at", "exam_started_at", "final_report_at", "read_started_at"):
        row[col + "_text"] = sqlite_utc_text(row[col])
for name in ("studies", "patients", "merges", "results", "reads", "new_models"):
    out.append([name, repr(getattr(b, name))])
json.dump({"compiled": connectors.compiled_in_use(), "results": out}, open(sys.argv[2], "w"))
"""


def _corpus(samples_dir: Path) -> bytes:
    from connectors_feedgen import generate

    from vigil.simulate import SimulationConfig, iter_messages

    msgs: list[bytes] = []
    for p in sorted(samples_dir.iterdir()):
        if p.is_file() and p.suffix in {".hl7", ".txt", ".msg", ".dat"}:
            msgs.append(p.read_bytes())
    for _sender, raw in iter_messages(SimulationConfig(studies=400, months=2, seed=3)):
        msgs.append(raw)
    msgs += [s.raw for s in generate(600, seed=11, mess=0.6)]
    rng = random.Random(5)
    damaged = []
    for raw in msgs[-400:]:
        b = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] = rng.choice(b"|^~\\&\rX0 \xc3\x00")
        damaged.append(bytes(b))
    # each on its own lines, so the same framing splits them in both runs
    return b"\r".join(m.strip(b"\r\n") + b"\r" for m in msgs + damaged)


def _run(corpus: Path, out: Path, source: bool) -> dict:
    env = {**os.environ, "VIGIL_CONNECTORS_SOURCE": "1" if source else "0"}
    env.pop("PYTHONWARNINGS", None)
    subprocess.run(
        [sys.executable, "-c", _MAP_SCRIPT, str(corpus), str(out), str(TESTS)],
        check=True,
        env=env,
        cwd=REPO,
        timeout=240,
    )
    return json.loads(out.read_text())


def test_build_maps_exactly_as_the_source(tmp_path: Path, samples_dir: Path) -> None:
    corpus = tmp_path / "corpus.hl7"
    corpus.write_bytes(_corpus(samples_dir))
    compiled = _run(corpus, tmp_path / "compiled.json", source=False)
    source = _run(corpus, tmp_path / "source.json", source=True)
    assert source["compiled"] == []
    assert compiled["compiled"] == built_modules()
    a, b = compiled["results"], source["results"]
    assert len(a) == len(b) > 2000
    assert len(b[-6][1]) > 10_000 and len(b[-2][1]) > 1000  # studies and reads were folded
    outcomes = {r[0] if r[0] == "rejected" else r[1] for r in b if r[0] in {"ok", "rejected"}}
    assert {"rejected", "mapped", "ignored"} <= outcomes  # the corpus exercises every path
    diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    assert not diffs, f"{len(diffs)} messages differ, first: {a[diffs[0]]} != {b[diffs[0]]}"


def test_build_switches_are_documented() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for switch in ("VIGIL_COMPILE=0", "VIGIL_CONNECTORS_SOURCE=1", "_compiled.json"):
        assert switch in readme
    setup_py = (REPO / "setup.py").read_text(encoding="utf-8")
    for name in ("framing", "hl7text", "parse", "phi", "labeller", "mapper", "rows"):
        assert f'"connectors/{name}.py"' in setup_py and f"`{name}`" in readme
