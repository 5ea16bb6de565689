"""The main job on the embedded default: a simulated network, ingested, monitored, ready to serve.

Idempotent: the simulation is reused when its options match, ingest skips messages it already
holds (sender + MSH-10), model cards that did not change stay as they are, demo users are made
once. Demo secrets are allowed here and only here (the data is simulated).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.settings import Settings

DEMO_USERS = {
    "demo-committee": "coe_member",
    "demo-quality": "quality_officer",
    "demo-administrator": "administrator",
    "demo-admin": "admin",
}


@dataclass
class DemoSummary:
    sim_dir: Path
    database: str
    simulated: bool
    studies: int
    messages: int
    ingest: dict[str, int] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    alerts_open: int = 0
    users_created: list[str] = field(default_factory=list)
    rescored: dict[str, int] = field(default_factory=dict)


def _matching_simulation(sim_dir: Path, options: dict[str, Any], seed: int) -> bool:
    manifest = sim_dir / "manifest.json"
    if not manifest.is_file():
        return False
    man = json.loads(manifest.read_text(encoding="utf-8"))
    have = man.get("options", {})
    return man.get("seed") == seed and all(have.get(k) == v for k, v in options.items())


def run_demo(
    settings: Settings,
    *,
    studies: int,
    months: int,
    seed: int,
    rescore_sample: int = 200,
    step: Callable[[str], None] = lambda _msg: None,
) -> DemoSummary:
    """Simulate (or reuse), register the model cards, ingest, re-score a sample with the demo
    models, monitor, and make demo users."""
    from connectors.ingest import ingest_files, iter_files
    from models.registry import add_cards
    from vigil.monitoring import run_monitors
    from vigil.simulate import SimulationConfig, simulate
    from vigil.store.db import open_store
    from vigil.users import add_user, list_users

    sim_dir = settings.data_dir / "demo-network"
    options = {"studies": studies, "months": months, "stable": False}
    simulated = not _matching_simulation(sim_dir, options, seed)
    if simulated:
        step(f"simulating {studies:,} studies over {months} months into {sim_dir}")
        simulate(
            SimulationConfig(studies=studies, months=months, seed=seed, out=sim_dir, force=True)
        )
    man = json.loads((sim_dir / "manifest.json").read_text(encoding="utf-8"))

    engine = open_store(settings)
    step("registering model cards")
    outcomes = add_cards(engine, sorted((sim_dir / "models").glob("*.toml")), actor="demo")

    step("ingesting the HL7 feeds")
    ingest = ingest_files(iter_files([sim_dir / "feeds"]), settings, engine)

    from models.rescore import RescoreOptions, run_rescore

    rescored = {}
    for name in sorted(o.name for o in outcomes):
        step(f"re-scoring a sample of {name} cases with the demo model (CPU)")
        summary = run_rescore(
            engine,
            settings,
            RescoreOptions(model=name, source=f"simulated:{sim_dir}", sample=rescore_sample,
                           device="cpu", actor="demo"),
        )  # fmt: skip
        rescored[name] = summary.n_compared

    step("running the monitors")
    results = run_monitors(engine)

    existing = {u.username for u in list_users(engine)}
    created = []
    for name, role in DEMO_USERS.items():
        if name not in existing:
            add_user(engine, name, role, password=name, actor="demo")
            created.append(name)

    counts = results.get("alert_counts", {})
    return DemoSummary(
        sim_dir=sim_dir,
        database=engine.url.render_as_string(hide_password=True),
        simulated=simulated,
        studies=int(man["options"]["studies"]),
        messages=ingest.messages,
        ingest=dict(ingest.outcomes),
        models=[o.name for o in outcomes],
        alerts_open=int(counts.get("open_total", 0)),
        users_created=created,
        rescored=rescored,
    )
