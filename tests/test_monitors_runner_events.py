"""The runner on simulated networks: every injected event raises the right alert in time, and a
stable network raises nothing (the simulator's Python API builds the frames, no HL7)."""

from __future__ import annotations

import pandas as pd
import pytest
from monitor_frames import frame_from_truth, simulated_network

from vigil.monitoring import evaluate

# event kind -> (alert kind, subgroup, metric prefix, weeks allowed after the event's start)
EXPECTED = {
    "population_shift": ("drift", "site={site}", "psi:patient_class", 3),
    "scanner_replacement": ("drift", "site={site}", "psi:scanner_", 2),
    "model_version_update": ("drift", "", "psi:model_version", 2),
    "subgroup_degradation": ("fairness", "{subgroup}", "", 10),
}


def test_stable_network_raises_no_alert() -> None:
    truth, infos, events = simulated_network(12_000, seed=4, stable=True)
    assert events == []
    results, candidates, errors = evaluate(frame_from_truth(truth, infos), infos)
    assert errors == []
    assert [c.summary for c in candidates] == []
    # the monitors did run: drift was tested in every later month
    for info in infos:
        assert results[info.name]["drift"]["n_tests"] > 100


@pytest.mark.slow
def test_every_event_raises_the_right_alert_within_the_stated_weeks() -> None:
    truth, infos, events = simulated_network(300_000, seed=1)
    frame = frame_from_truth(truth, infos)
    del truth
    assert {e["kind"] for e in events} == set(EXPECTED)
    for ev in events:
        kind, subgroup, metric, weeks = EXPECTED[ev["kind"]]
        subgroup = subgroup.format(site=ev["site"], subgroup=ev["subgroup"])
        model = ev["models"][0]
        cut = pd.Timestamp(ev["start_utc"]) + pd.Timedelta(weeks=weeks)
        info = [i for i in infos if i.name == model]
        _, candidates, errors = evaluate(frame[frame["exam_at"] < cut], info)
        assert errors == []
        hits = [
            c
            for c in candidates
            if c.kind == kind and c.subgroup == subgroup and c.metric.startswith(metric)
        ]
        assert hits, f"{ev['id']} {ev['kind']}: no {kind} alert for {model} {subgroup} by {cut}"
        # nothing fires before the event (no alert of that kind for that subgroup)
        before = pd.Timestamp(ev["start_utc"])
        _, early, _ = evaluate(frame[frame["exam_at"] < before], info)
        assert not [c for c in early if c.kind == kind and c.subgroup == subgroup], (
            f"{ev['id']}: alert before the event started"
        )
