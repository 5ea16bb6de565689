"""Dashboard speed: every page's first render and one filter change, in server time.

Builds (or reuses) a SQLite store of N simulated studies (default 1,000,000; dashboard.synthetic
bulk inserts, then the real `vigil monitor` runner), then drives every page with Streamlit's
AppTest in a fresh session each. Server time is the script run of that render, measured inside
Streamlit's script runner (its _run_script, timed by a wrapper); AppTest's wall time around it
(its own
widget-tree bookkeeping and polling included) is printed beside it as an upper bound.

Two passes:
- cold: every cache emptied before each page (as right after the server starts or new data):
  pages render from the stored monitor run; case-level sections start the frame loading in the
  background and show "Loading case data…" (the figure is that render, which never waits);
- warm: the frame loaded once (in the background when served), every page and one filter
  change per page in fresh sessions.

Baseline, measured in the same run: the same page interaction without the dashboard's caches,
i.e. load the case frame and call the monitor for it (what a naive page would do per click,
and what the first visit after a start waited for before the pages read the monitor run).

    .venv/bin/python bench/bench_dashboard.py                 # 1,000,000 studies
    .venv/bin/python bench/bench_dashboard.py --studies 50000 --db /tmp/b.sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST_RENDER_LIMIT_S = 1.0
FILTER_LIMIT_S = 0.3


def _filter_actions():
    """(page, description, action on an AppTest) for one filter change per page."""

    def second(widget):
        opts = widget.options
        return opts[1] if len(opts) > 1 else opts[0]

    return {
        "overview": None,
        "performance": ("period -> week", lambda at: at.radio[0].set_value("W")),
        "drift": ("model", lambda at: at.selectbox[0].select(second(at.selectbox[0]))),
        "fairness": ("attribute", lambda at: at.selectbox[1].select(second(at.selectbox[1]))),
        "alerts": ("status -> open", lambda at: at.multiselect[0].set_value(["open"])),
        "discordance": ("model", lambda at: at.selectbox[0].select(second(at.selectbox[0]))),
        "turnaround": ("model", lambda at: at.selectbox[0].select(second(at.selectbox[0]))),
        "business_case": ("scope", lambda at: at.selectbox[0].select(second(at.selectbox[0]))),
        "readiness": ("scope", lambda at: at.selectbox[0].select(second(at.selectbox[0]))),
        "inventory": ("model card", lambda at: at.selectbox[0].select(second(at.selectbox[0]))),
        "ingest": ("window -> 24 h", lambda at: at.select_slider[0].set_value(24)),
        "users": None,
        "settings": None,
        "audit": ("actor", lambda at: at.text_input[0].input("nobody")),
    }


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, help="SQLite file (reused when it already has studies)")
    ap.add_argument("--repeat", type=int, default=3, help="sessions per page (median reported)")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold pass")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="vigil-bench-dash-")
    db = args.db or Path(tmp) / "vigil.sqlite"
    os.environ["VIGIL_DATABASE_URL"] = f"sqlite:///{db}"
    os.environ["VIGIL_DATA_DIR"] = tmp
    os.environ["VIGIL_DEMO"] = "1"
    os.environ["DO_NOT_TRACK"] = "1"
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)

    from sqlalchemy import func
    from sqlmodel import select

    from dashboard import data
    from dashboard.nav import PAGE_SPECS
    from dashboard.synthetic import populate
    from vigil.store.db import open_store, session_scope
    from vigil.store.tables import MonitorRun, Study

    data.WARM_UP_IN_BACKGROUND = False  # warmed explicitly below, and timed
    engine = open_store()
    with session_scope(engine) as s:
        have = s.exec(select(func.count(Study.id))).one()
        runs = s.exec(select(func.count(MonitorRun.id))).one()
    figures: dict = {"studies": args.studies, "database": "sqlite"}
    if have == 0:
        t, _ = _timed(lambda: populate(engine, args.studies))
        print(f"built store: {args.studies:,} studies in {t:.1f} s", flush=True)
        figures["build_s"] = round(t, 1)
        have = args.studies
    figures["studies"] = int(have)
    if runs == 0:
        from vigil.monitoring import run_monitors

        t, _ = _timed(lambda: run_monitors(engine))
        print(f"vigil monitor run: {t:.1f} s", flush=True)
        figures["monitor_run_s"] = round(t, 1)

    # --- baseline: no dashboard cache (load the frame, call the monitor) ------------------
    from monitors.performance import performance_trend
    from vigil.caseframe import load_case_frame

    model = data.model_names()[0]
    t_load, frame = _timed(lambda: load_case_frame(engine))
    t_mon, _ = _timed(lambda f=frame: performance_trend(f, model=model, freq="W"))
    figures["baseline_uncached_interaction_s"] = round(t_load + t_mon, 3)
    figures["baseline_frame_load_s"] = round(t_load, 3)
    print(
        f"baseline (no cache): load frame {t_load:.2f} s + weekly trend {t_mon:.3f} s "
        f"= {t_load + t_mon:.2f} s per interaction ({len(frame):,} rows)",
        flush=True,
    )
    del frame

    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
    from streamlit.testing.v1 import AppTest

    script_times: list[float] = []
    original = ScriptRunner._run_script

    def timed_run_script(self, rerun_data):  # server time of one script run
        t = time.perf_counter()
        try:
            return original(self, rerun_data)
        finally:
            script_times.append(time.perf_counter() - t)

    ScriptRunner._run_script = timed_run_script
    app = ROOT / "dashboard" / "app.py"
    actions = _filter_actions()
    pages = [(f.removesuffix(".py"), t) for specs in PAGE_SPECS.values() for f, t, *_ in specs]
    # the first page in a fresh process pays imports (plotly etc.): one untimed sign-in
    at = AppTest.from_file(str(app), default_timeout=600)
    at.session_state["vigil_identity"] = {"username": "bench", "role": "admin"}
    at.run()

    # --- cold: every cache emptied before each page ----------------------------------------
    cold_rows = []
    if not args.no_cold:
        import streamlit as st

        def settle_loads():  # a load a page started must not run into the next page's time
            for fut in list(data._loads.values()):
                fut.exception()  # waits

        for page, title in pages:
            settle_loads()
            st.cache_data.clear()
            st.cache_resource.clear()
            data.forget_frames()
            at = AppTest.from_file(str(app), default_timeout=600)
            at.session_state["vigil_identity"] = {"username": "bench", "role": "admin"}
            if page == "overview":
                w, _ = _timed(at.run)
            else:
                at.run()
                w, _ = _timed(lambda p=page, a=at: a.switch_page(f"pages/{p}.py").run())
            assert not at.exception, (page, [e.message for e in at.exception])
            first = script_times[-1]
            loading = any("Loading case data" in i.value for i in at.info)
            frame = bool(data._loads)
            row = {
                "page": title,
                "cold_first_render_s": round(first, 3),
                "cold_apptest_wall_s": round(w, 3),
                "shows_loading_state": loading,
                "started_frame_load": frame,
            }
            act = actions.get(page)
            if act:
                try:
                    act[1](at)
                    wf, _ = _timed(at.run)
                    row["cold_filter_change_s"] = round(script_times[-1], 3)
                except (IndexError, KeyError, ValueError):  # widget not there while loading
                    row["cold_filter_change_s"] = None
            cold_rows.append(row)
            print(
                f"COLD {title:26s} first render {first:.3f} s (wall {w:.3f})"
                f"{'  [loading case data shown]' if loading else ''}"
                f"{'' if frame else '  [no frame load]'}"
                f"   filter {row.get('cold_filter_change_s')}",
                flush=True,
            )
        settle_loads()
        figures["cold_pages"] = cold_rows
        figures["worst_cold_first_render_s"] = max(r["cold_first_render_s"] for r in cold_rows)

    # --- warm-up (once per process and data version, in the background when served) -----
    t_warm, _ = _timed(data.warm_up)
    figures["warm_up_s"] = round(t_warm, 2)
    print(
        f"warm-up (frame + every default aggregate, once per process): {t_warm:.1f} s", flush=True
    )

    rows = []
    for page, _title in pages:
        at.switch_page(f"pages/{page}.py").run()
    for page, title in pages:
        firsts, filters = [], []
        for _ in range(args.repeat):
            at = AppTest.from_file(str(app), default_timeout=600)
            at.session_state["vigil_identity"] = {"username": "bench", "role": "admin"}
            if page == "overview":
                w, _ = _timed(at.run)
            else:
                at.run()
                w, _ = _timed(lambda p=page, a=at: a.switch_page(f"pages/{p}.py").run())
            assert not at.exception, (page, [e.message for e in at.exception])
            firsts.append((script_times[-1], w))
            act = actions.get(page)
            if act:
                act[1](at)
                wf, _ = _timed(at.run)
                assert not at.exception, (page, [e.message for e in at.exception])
                filters.append((script_times[-1], wf))
        med = statistics.median
        row = {
            "page": title,
            "first_render_s": round(med(t for t, _ in firsts), 3),
            "first_render_apptest_wall_s": round(med(w for _, w in firsts), 3),
            "filter": actions[page][0] if actions.get(page) else "",
            "filter_change_s": round(med(t for t, _ in filters), 3) if filters else None,
            "filter_change_apptest_wall_s": (
                round(med(w for _, w in filters), 3) if filters else None
            ),
        }
        rows.append(row)
        f = "—"
        if row["filter_change_s"] is not None:
            f = f"{row['filter_change_s']:.3f} s (wall {row['filter_change_apptest_wall_s']:.3f})"
        print(
            f"{title:26s} first render {row['first_render_s']:.3f} s "
            f"(wall {row['first_render_apptest_wall_s']:.3f})   "
            f"filter ({row['filter'] or 'none'}) {f}",
            flush=True,
        )
    # an adjudication changes the labels: the frame is not reloaded, the adjudication is
    # overlaid and the label-dependent aggregates recomputed on the next render
    from vigil.users import Identity, Role

    model = data.model_names()[0]
    case = data.discordant_cases(model, adjudicated=False).iloc[0]
    data.adjudicate(
        int(case["study_id"]),
        str(case["finding"]),
        "indeterminate",
        Identity("bench", Role.QUALITY_OFFICER),
        ai_call=bool(case["ai_call"]),
        rad_label=str(case["radiologist"]),
        note="benchmark",
    )
    at = AppTest.from_file(str(app), default_timeout=600)
    at.session_state["vigil_identity"] = {"username": "bench", "role": "admin"}
    at.run()
    at.switch_page("pages/discordance.py").run()
    assert not at.exception
    figures["after_adjudication_discordance_render_s"] = round(script_times[-1], 3)
    print(
        f"discordance page, first render after an adjudication: {script_times[-1]:.3f} s "
        "(adjudication overlaid on the loaded frame, its aggregates recomputed)",
        flush=True,
    )
    figures["pages"] = rows
    worst_first = max(r["first_render_s"] for r in rows)
    worst_filter = max(r["filter_change_s"] or 0 for r in rows)
    figures["worst_first_render_s"] = worst_first
    figures["worst_filter_change_s"] = worst_filter
    worst_cold = figures.get("worst_cold_first_render_s", 0.0)
    ok = (
        worst_first < FIRST_RENDER_LIMIT_S
        and worst_filter < FILTER_LIMIT_S
        and worst_cold < FIRST_RENDER_LIMIT_S
    )
    print(
        f"worst cold first render {worst_cold:.3f} s, "
        f"worst warm first render {worst_first:.3f} s (limit {FIRST_RENDER_LIMIT_S} s), worst "
        f"filter change {worst_filter:.3f} s (limit {FILTER_LIMIT_S} s): "
        f"{'PASS' if ok else 'FAIL'}; baseline per interaction without cache "
        f"{figures['baseline_uncached_interaction_s']:.2f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
