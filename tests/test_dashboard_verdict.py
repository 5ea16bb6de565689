"""The committee's one-line verdict per model: on target / watch / act, and why."""

from __future__ import annotations

from dashboard.verdict import model_verdict


def _est(value, low, high, n=200, status="ok"):
    return {"value": value, "ci_low": low, "ci_high": high, "n": n, "status": status}


def _result(sens, spec, vs_baseline=()):
    return {
        "performance": {
            "metrics": {"sensitivity": sens, "specificity": spec},
            "vs_baseline": list(vs_baseline),
        }
    }


TARGETS = {"sensitivity": 0.85, "specificity": 0.80}


def test_on_target() -> None:
    v = model_verdict(_result(_est(0.92, 0.88, 0.95), _est(0.9, 0.87, 0.92)), TARGETS, [])
    assert v.level == "on target"


def test_watch_when_estimate_misses_but_ci_includes_target_or_data_are_thin() -> None:
    v = model_verdict(_result(_est(0.83, 0.75, 0.89), _est(0.9, 0.87, 0.92)), TARGETS, [])
    assert v.level == "watch" and "under target 0.85" in v.line
    thin = _est(None, None, None, n=12, status="insufficient_data")
    v = model_verdict(_result(thin, _est(0.9, 0.87, 0.92)), TARGETS, [])
    assert v.level == "watch" and "insufficient data (n=12)" in v.line
    v = model_verdict(
        _result(_est(0.92, 0.88, 0.95), _est(0.9, 0.87, 0.92)),
        TARGETS,
        [{"severity": "warning", "kind": "drift"}],
    )
    assert v.level == "watch" and "1 open alert (drift)" in v.line


def test_act_when_ci_below_target_below_baseline_or_critical_alert() -> None:
    v = model_verdict(_result(_est(0.70, 0.62, 0.78), _est(0.9, 0.87, 0.92)), TARGETS, [])
    assert v.level == "act" and "below target 0.85" in v.line
    below = {
        "metric": "specificity",
        "baseline": 0.9,
        "value": 0.8,
        "ci_high": 0.85,
        "below_baseline": True,
    }
    v = model_verdict(_result(_est(0.92, 0.88, 0.95), _est(0.9, 0.87, 0.92), [below]), TARGETS, [])
    assert v.level == "act" and "specificity below baseline 0.90" in v.line
    v = model_verdict(
        _result(_est(0.92, 0.88, 0.95), _est(0.9, 0.87, 0.92)),
        TARGETS,
        [{"severity": "critical", "kind": "performance"}],
    )
    assert v.level == "act" and "1 critical alert open" in v.line
