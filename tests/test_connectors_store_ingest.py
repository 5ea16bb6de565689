"""`vigil ingest`: files and folders in any mix, pairing checked against the simulator's truth,
and a second run over the same archive changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from connectors_transport_support import dump_database
from sqlalchemy import select
from typer.testing import CliRunner

from vigil.cli.app import app
from vigil.simulate import SimulationConfig, simulate, truth_frame
from vigil.store.tables import AIModel, AIResult, DeadLetter, FinalRead, Study

runner = CliRunner()


def _ingest(*paths: Path, workers: str = "0") -> str:
    r = runner.invoke(app, ["ingest", "--workers", workers, *map(str, paths)])
    assert r.exit_code == 0, r.output
    return r.output


def test_ingest_pairs_like_the_truth_and_reingest_changes_nothing(settings, engine, tmp_path):
    out = tmp_path / "sim"
    res = simulate(SimulationConfig(studies=250, months=2, seed=8, out=out))
    feeds = out / "feeds"
    one_file = sorted((feeds / "RADIS").iterdir())[0]
    # a file and a folder first (any mix), then everything: earlier ones are duplicates
    first = _ingest(one_file, feeds / "NEUROVUE")
    assert "stored" in first
    full = _ingest(out, workers="1")
    assert "duplicate" in full

    truth = truth_frame(out)
    with engine.connect() as conn:
        studies = pd.DataFrame(
            conn.execute(
                select(Study.id, Study.site_code, Study.accession, Study.final_report_at)
            ).all(),
            columns=["study_id", "site", "accession", "our_final_at"],
        )
        results = pd.DataFrame(
            conn.execute(
                select(AIResult.study_id, AIModel.name, AIResult.score).join(
                    AIModel, AIModel.id == AIResult.model_id
                )
            ).all(),
            columns=["study_id", "our_model", "our_score"],
        )
        current = pd.DataFrame(
            conn.execute(
                select(FinalRead.study_id, FinalRead.report_status).where(
                    FinalRead.is_current.is_(True)
                )
            ).all(),
            columns=["study_id", "status"],
        )
        dead = conn.execute(select(DeadLetter.id)).all()
    assert current.study_id.is_unique  # one current read per study and finding (one finding)
    merged = truth.merge(studies, on=["site", "accession"], how="left")
    merged = merged.merge(results, on="study_id", how="left").merge(
        current, on="study_id", how="left"
    )
    slack = len(res.malformed) + len(dead)  # studies whose message was deliberately broken
    # every AI result landed on its own study with its score (site-namespaced accession)
    has_ai = merged.ai_score.notna()
    score_ok = (merged.our_score - merged.ai_score).abs() < 1e-6
    assert (has_ai & ~score_ok).sum() <= slack
    assert (merged.our_model[has_ai & score_ok] == merged.model[has_ai & score_ok]).all()
    # final reads: current where the truth has a final report, corrections supersede
    # final reads (of studies an AI model looked at): current, at the truth's time (to the
    # second: some senders add fractions), and a correction supersedes the final
    final = merged.final_report_at.notna() & merged.model.notna()
    same_time = (merged.our_final_at - merged.final_report_at).abs() < pd.Timedelta(seconds=1)
    assert (final & ~same_time).sum() <= slack
    assert (final & merged.status.isna()).sum() <= slack
    corrected = merged.report_statuses.str.contains("C") & merged.model.notna()
    assert (corrected & final & merged.status.isin(["C", "A"])).sum() >= corrected.sum() - slack
    prelim_only = (merged.report_statuses == "P") & merged.model.notna()
    assert prelim_only.sum() + corrected.sum() > 0
    assert merged.status[prelim_only].isna().all()

    before = dump_database(settings.effective_database_url)
    again = _ingest(out)
    after = dump_database(settings.effective_database_url)
    assert after == before
    total = int(re.search(r"([\d,]+) messages in", full).group(1).replace(",", ""))
    dups = int(re.search(r"duplicate\W+([\d,]+)", again).group(1).replace(",", ""))
    assert dups == total == res.messages
