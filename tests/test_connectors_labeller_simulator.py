"""The connectors against the simulator's own output: its feed files and its truth.parquet.

The simulator (vigil.simulate) writes the feeds and, independently, the truth they encode: the
radiologist label each report expresses, the AI score, version and scanner of each study, and the
malformed messages it injected with their defect. The pipeline must recover all of it.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from connectors.errors import MessageRejected
from connectors.events import AIResultEvent, ReadEvent
from connectors.framing import split_messages
from connectors.pipeline import Pipeline
from vigil.settings import load_settings

simulate_mod = pytest.importorskip("vigil.simulate")

# the simulator's defect -> the reason code the pipeline gives it
DEFECT_REASON = {
    "non_numeric_score": "bad_score",
    "missing_accession": "missing_accession",
    "truncated_msh": "bad_msh",
    "garbage_bytes": "bad_encoding",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("sim")
    cfg = simulate_mod.SimulationConfig(studies=2500, months=2, seed=11, out=out, mess=0.05)
    result = simulate_mod.simulate(cfg)
    pipe = Pipeline(load_settings(demo=True))
    mapped, rejected = [], []
    for path in sorted((out / "feeds").rglob("*.hl7")):
        for raw in split_messages(path.read_bytes()):
            try:
                mapped.append(pipe.handle(raw))
            except MessageRejected as exc:
                rejected.append(exc)
    truth = pd.read_parquet(out / "truth.parquet").set_index(["site", "accession"])
    return result, mapped, rejected, truth


def test_only_the_injected_defects_are_rejected(run) -> None:
    result, mapped, rejected, _ = run
    assert len(mapped) + len(rejected) == result.messages
    by_id = {m["control_id"]: m for m in result.malformed}
    got = Counter(exc.reason_code for exc in rejected)
    want = Counter(DEFECT_REASON.get(m["defect"], m["defect"]) for m in result.malformed)
    assert got == want
    for exc in rejected:
        if exc.control_id:  # a truncated MSH has lost its control id
            assert DEFECT_REASON[by_id[exc.control_id]["defect"]] == exc.reason_code
    assert all(m.outcome in ("mapped", "ignored") for m in mapped)


def test_report_labels_against_truth(run) -> None:
    """Text labels per finding against the radiologist label in truth.parquet (floor 0.97)."""
    _, mapped, _, truth = run
    right: Counter[tuple[str, str]] = Counter()
    total: Counter[tuple[str, str]] = Counter()
    for m in mapped:
        for ev in m.events:
            if not isinstance(ev, ReadEvent):
                continue
            row = truth.loc[(ev.study.site_code, ev.study.accession)]
            # a prelim or final report states the first read; a corrected report or an
            # addendum states the final one
            want = row.rad_label_initial if ev.report_status in ("P", "F") else row.rad_label_final
            key = (ev.finding, ev.label_source)
            total[key] += 1
            right[key] += ev.label == want
    assert {f for f, _ in total} == {"ich", "lung_nodule"}
    for key, n in total.items():
        assert n >= 100, key
        accuracy = right[key] / n
        assert accuracy >= (1.0 if key[1] == "coded" else 0.97), (key, accuracy, n)


def test_ai_results_against_truth(run) -> None:
    _, mapped, _, truth = run
    n = 0
    for m in mapped:
        for ev in m.events:
            if not isinstance(ev, AIResultEvent):
                continue
            row = truth.loc[(ev.study.site_code, ev.study.accession)]
            assert (ev.model_name, ev.score, ev.call, ev.model_version) == (
                row.model,
                row.ai_score,
                row.ai_call,
                row.model_version,
            )
            assert (ev.study.scanner_manufacturer, ev.study.scanner_model) == (
                row.scanner_manufacturer,
                row.scanner_model,
            )
            assert ev.patient.sex == row.sex
            # truth's age is days/365.25 (can be a year off near a birthday); ours is calendar
            assert abs(ev.patient.age_at_study - row.age) <= 1
            n += 1
    assert n > 1000


def test_no_phi_in_events(run) -> None:
    """Names and MRNs from the feeds never appear in any event."""
    _, mapped, _, truth = run
    mrns = {str(x) for x in truth["mrn"].head(300)}
    for m in mapped[:3000]:
        text = repr(m.events)
        assert not any(f"'{mrn}'" in text for mrn in mrns)
        for ev in m.events:
            if isinstance(ev, ReadEvent):
                assert len(ev.evidence) <= 160
