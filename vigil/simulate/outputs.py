"""The answer key beside the feeds: manifest.json, truth.parquet and the model cards."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from vigil.simulate import catalog as C
from vigil.simulate import hl7_writer as W
from vigil.simulate.feeds import FeedPlan, control_id, month_label, uid_root
from vigil.simulate.network import (
    NONE,
    READ_FACTOR_AI,
    TRIAGE_FACTOR,
    Network,
    design_values,
    performance_table,
    subgroup_values,
)
from vigil.simulate.scores import acceptance_test

LABELS = np.array(["negative", "positive", "uncertain"], dtype=object)


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).date().isoformat()


# --- truth.parquet ---------------------------------------------------------------------------


def truth_table(net: Network):
    """One row per study (pyarrow Table)."""
    import pyarrow as pa

    c = net.cols
    n = net.n
    g = subgroup_values(net)
    site_codes = [s.code for s in C.SITES]
    sites = c["site"].tolist()
    seqs = c["seq"].tolist()
    root = uid_root(net.config.seed)
    acc = [W.accession(s, q) for s, q in zip(sites, seqs, strict=True)]
    uid = [f"{root}.{s + 1}.{q}" for s, q in zip(sites, seqs, strict=True)]
    has_ai = c["model"] >= 0
    model_names = np.array([m.name for m in C.MODELS] + [None], dtype=object)[c["model"]]
    findings = np.array([m.finding for m in C.MODELS] + [None], dtype=object)[c["model"]]
    ver = np.full(n, None, dtype=object)
    for mi, m in enumerate(C.MODELS):
        for vi, v in enumerate(m.versions):
            ver[(c["model"] == mi) & (c["version"] == vi)] = v.version
    procs = C.PROCEDURES
    rad_ids = np.array([r[0] for r in net.rad_table], dtype=object)

    def ts(col: str):
        v = c[col]
        return pa.array(np.where(v == NONE, 0, v) * 1_000_000, pa.timestamp("us", tz="UTC"),
                        mask=v == NONE)  # fmt: skip

    def opt(values: np.ndarray, mask: np.ndarray, typ):
        return pa.array(values, typ, mask=~mask)

    def label(col: str):
        v = c[col]
        return pa.array(LABELS[np.maximum(v, 0)], pa.string(), mask=v < 0)

    statuses = np.full(n, "F", dtype=object)
    statuses[c["has_prelim"]] = "P,F"
    statuses[c["corrected"]] = statuses[c["corrected"]] + ",C"
    statuses[c["addendum"]] = statuses[c["addendum"]] + ",A"
    pat = c["patient"]
    y = c["y"]
    cols: dict[str, Any] = {
        "site": pa.array(np.array(site_codes, dtype=object)[c["site"]], pa.string()),
        "accession": pa.array(acc, pa.string()),
        "study_uid": pa.array(uid, pa.string()),
        "patient_index": pa.array(pat, pa.int64()),
        "mrn": pa.array(net.patients["mrn"][pat].astype(str), pa.string()),
        "modality": pa.array(np.array([p.modality for p in procs], dtype=object)[c["proc"]]),
        "procedure_code": pa.array(np.array([p.code for p in procs], dtype=object)[c["proc"]]),
        "procedure_name": pa.array(np.array([p.name for p in procs], dtype=object)[c["proc"]]),
        "scanner_id": pa.array(np.array([s.key for s in C.SCANNERS], dtype=object)[c["scanner"]]),
        "scanner_manufacturer": pa.array(g["scanner_manufacturer"], pa.string()),
        "scanner_model": pa.array(g["scanner_model"], pa.string()),
        "patient_class": pa.array(g["patient_class"], pa.string()),
        "age": pa.array(c["age"], pa.int16()),
        "age_band": pa.array(g["age_band"], pa.string()),
        "sex": pa.array(g["sex"], pa.string()),
        "race": pa.array(g["race"], pa.string()),
        "ethnicity": pa.array(g["ethnicity"], pa.string()),
        "model": pa.array(model_names, pa.string()),
        "finding": pa.array(findings, pa.string()),
    }
    for mi, m in enumerate(C.MODELS):
        sel = c["model"] == mi
        cols[f"true_{m.finding}"] = pa.array(y == 1, pa.bool_(), mask=~sel)
    cols.update(
        {
            "model_version": pa.array(ver, pa.string()),
            "visibility": opt(c["visibility"], has_ai, pa.float64()),
            "contrast_factor": opt(c["contrast"], has_ai, pa.float64()),
            "score_offset": opt(c["score_offset"], has_ai, pa.float64()),
            "noise": opt(c["noise"], has_ai, pa.float64()),
            "separation": opt(c["separation"], has_ai, pa.float64()),
            "latent_z": opt(c["z"], has_ai, pa.float64()),
            "ai_score": opt(c["score"], has_ai, pa.float64()),
            "ai_call": opt(c["ai_call"], has_ai, pa.bool_()),
            "p_call": opt(c["p_call"], has_ai, pa.float64()),
            "rad_label_initial": label("rad_initial"),
            "rad_label_final": label("rad_final"),
            "report_statuses": pa.array(statuses, pa.string()),
            "report_coded": pa.array(c["coded"], pa.bool_()),
            "radiologist_id": pa.array(rad_ids[c["radiologist"]], pa.string()),
            "triaged": pa.array(c["triaged"], pa.bool_()),
            "ordered_at": ts("ordered"),
            "exam_started_at": ts("exam_start"),
            "exam_ended_at": ts("exam_end"),
            "ai_result_at": ts("ai_time"),
            "prelim_report_at": ts("prelim_time"),
            "final_report_at": ts("final_time"),
            "corrected_at": ts("correction_time"),
            "addendum_at": ts("addendum_time"),
            "read_started_at": ts("read_start"),
            "read_ended_at": ts("read_end"),
            "seed": pa.array(c["seed"], pa.int64()),
        }
    )
    return pa.table(cols)


# --- manifest.json ---------------------------------------------------------------------------


def _clean(obj: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _model_entry(net: Network, mi: int) -> dict[str, Any]:
    c = net.cols
    m = C.MODELS[mi]
    t0 = int(net.config.start_dt.timestamp())
    own = [e for e in net.events if m.name in e.models]
    first_event = min((e.start_ts for e in own), default=None)
    everything = np.ones(net.n, bool)
    baseline = everything if first_event is None else c["exam_start"] < first_event
    sel = c["model"] == mi
    versions = []
    for vi, v in enumerate(m.versions):
        used = sel & (c["version"] == vi)
        if not used.any():
            continue
        versions.append(
            {
                "version": v.version,
                "first_study": _iso(int(c["exam_start"][used].min())),
                "separation_d": v.separation,
                "slope": v.slope,
                "intercept": v.intercept,
                "latent_threshold": net.t_latent[(mi, vi)],
            }
        )
    design = {}
    for sc in C.SCANNERS:
        if sc.modality != "CT":
            continue
        design[sc.key] = design_values(mi, 0, sc.contrast, sc.offset)
    y = c["y"][sel]
    lab = c["rad_initial"][sel]
    return {
        "name": m.name,
        "finding": m.finding,
        "sender": m.sender,
        "vendor": m.vendor,
        "product": m.product,
        "procedure": m.procedure,
        "threshold": m.threshold,
        "go_live_date": _iso(net.go_live[mi]),
        "silent_before_go_live": True,
        "versions": versions,
        "score_model": (
            "binormal: latent z = score_offset + contrast_factor * visibility + noise; "
            "visibility ~ N(y * d, 0.5), noise ~ N(0, 1 - 0.5 * contrast^2); "
            "score = logistic(slope * z + intercept) rounded to 4 decimals; call = score >= "
            "threshold. d is multiplied by pediatric_factor under 18 and by events."
        ),
        "pediatric_factor": m.pediatric_factor,
        "design_per_scanner": design,
        "true_performance": {
            "note": (
                "expected values over the realised studies (each study's call is Bernoulli "
                "with p_call in truth.parquet); AUC is the exact pair probability"
            ),
            "baseline_period": {
                "from": _iso(t0),
                "to": _iso(first_event)
                if first_event
                else _iso(int(net.config.end_dt.timestamp())),
                "subgroups": performance_table(net, mi, baseline),
            },
            "whole_run": {"subgroups": performance_table(net, mi, everything)},
        },
        "radiologist": {
            "miss_rate": m.miss_rate,
            "overcall_rate": m.overcall_rate,
            "uncertain_if_present": m.uncertain_pos,
            "uncertain_if_absent": m.uncertain_neg,
            "realised_miss_rate": float((lab[y == 1] == 0).mean()) if (y == 1).any() else None,
            "realised_overcall_rate": float((lab[y == 0] == 1).mean()) if (y == 0).any() else None,
            "correction_rate_of_errors": 0.15,
        },
        "acceptance_test": _acceptance(net, mi),
    }


def _acceptance(net: Network, mi: int) -> dict[str, Any]:
    m = C.MODELS[mi]
    v = m.versions[0]
    scanners = [s for s in C.SCANNERS if s.modality == "CT" and not s.replacement]
    rng = np.random.default_rng([net.config.seed, 0xACCE, mi])
    sel = net.cols["model"] == mi
    prevalence = float((net.cols["y"][sel] == 1).mean()) if sel.any() else 0.1
    res = acceptance_test(
        rng, v.separation, v.slope, v.intercept, m.threshold,
        np.array([s.contrast for s in scanners]), np.array([s.offset for s in scanners]),
        prevalence,
    )  # fmt: skip
    res["period"] = f"local acceptance test before go-live (enriched, n={res['n']})"
    return res


def _event_truth(net: Network) -> None:
    """Fill each event's before/after truth from the realised studies."""
    c = net.cols
    g = subgroup_values(net)
    for e in net.events:
        before = c["exam_start"] < e.start_ts
        after = ~before
        truth: dict[str, Any] = {}
        if e.kind == "population_shift":
            at = c["site"] == C.SITE_INDEX[e.site]
            em = g["patient_class"] == "emergency"
            truth["emergency_share_before"] = (
                float(em[at & before].mean()) if (at & before).any() else None
            )
            truth["emergency_share_after"] = (
                float(em[at & after].mean()) if (at & after).any() else None
            )
            for name in e.models:
                mi = C.MODEL_INDEX[name]
                truth[name] = {
                    "before": performance_table(net, mi, at & before, False)["overall"],
                    "after": performance_table(net, mi, at & after, False)["overall"],
                }
        elif e.kind == "subgroup_degradation":
            mi = C.MODEL_INDEX[e.models[0]]
            old = g["age_band"] == "80+"
            truth["before"] = performance_table(net, mi, old & before, False)["overall"]
            truth["after"] = performance_table(net, mi, old & after, False)["overall"]
            truth["others_after"] = performance_table(net, mi, ~old & after, False)["overall"]
            truth["design_after_on_typical_scanner"] = design_values(
                mi, 0, 1.0, 0.0, e.params["separation_factor"]
            )
        elif e.kind == "scanner_replacement":
            old = C.SCANNER_INDEX[e.params["old_scanner"]]
            new = C.SCANNER_INDEX[e.params["new_scanner"]]
            so, sn = C.SCANNERS[old], C.SCANNERS[new]
            truth["old_scanner"] = {"manufacturer": so.manufacturer, "model": so.model,
                                    "kvp": so.kvp, "slice_mm": so.slice_mm}  # fmt: skip
            truth["new_scanner"] = {"manufacturer": sn.manufacturer, "model": sn.model,
                                    "kvp": sn.kvp, "slice_mm": sn.slice_mm}  # fmt: skip
            for name in e.models:
                mi = C.MODEL_INDEX[name]
                truth[name] = {
                    "old_scanner_before": performance_table(
                        net, mi, (c["scanner"] == old) & before, False
                    )["overall"],
                    "new_scanner_after": performance_table(
                        net, mi, (c["scanner"] == new) & after, False
                    )["overall"],
                    "design_old": design_values(mi, 0, so.contrast, so.offset),
                    "design_new": design_values(mi, 0, sn.contrast, sn.offset),
                }
        elif e.kind == "model_version_update":
            mi = C.MODEL_INDEX[e.models[0]]
            sel = c["model"] == mi
            truth["before"] = performance_table(net, mi, before, False)["overall"]
            truth["after"] = performance_table(net, mi, after, False)["overall"]
            truth["mean_score_before"] = (
                float(np.mean(c["score"][sel & before])) if (sel & before).any() else None
            )
            truth["mean_score_after"] = (
                float(np.mean(c["score"][sel & after])) if (sel & after).any() else None
            )
            truth["flag_rate_before"] = (
                float(np.mean(c["ai_call"][sel & before])) if (sel & before).any() else None
            )
            truth["flag_rate_after"] = (
                float(np.mean(c["ai_call"][sel & after])) if (sel & after).any() else None
            )
        e.truth = truth


def manifest(net: Network, plan: FeedPlan) -> dict[str, Any]:
    cfg = net.config
    _event_truth(net)
    by_sender: dict[str, dict[str, int]] = {}
    for s, name in enumerate(W.SENDERS):
        sel = plan.sender == s
        kinds, counts = np.unique(plan.kind[sel], return_counts=True)
        by_sender[name] = {W.KIND_NAMES[k]: int(n) for k, n in zip(kinds, counts, strict=True)}
    files = []
    for key, a, b in plan.month_slices():
        for s, name in enumerate(W.SENDERS):
            n_msgs = int((plan.sender[a:b] == s).sum())
            if n_msgs:
                files.append(
                    {
                        "path": f"feeds/{name}/{month_label(key)}.hl7",
                        "sender": name,
                        "messages": n_msgs,
                        "bom": plan.file_bom[(s, key)],
                        "batch": plan.file_batch[(s, key)],
                    }
                )
    bad = np.flatnonzero(plan.malformed)
    # position of each message within its file: seq minus the first seq of that sender-month
    first_seq: dict[tuple[int, int], int] = {}
    for key, a, b in plan.month_slices():
        for s in range(len(W.SENDERS)):
            sel = np.flatnonzero(plan.sender[a:b] == s)
            if len(sel):
                first_seq[(s, key)] = int(plan.seq[a + sel[0]])
    malformed = []
    for k in bad.tolist():
        s, key, kind = int(plan.sender[k]), int(plan.month[k]), int(plan.malformed[k])
        j = int(plan.study[k])
        malformed.append(
            {
                "sender": W.SENDERS[s],
                "site": C.SITES[int(net.cols["site"][j])].code,
                "control_id": control_id(s, int(plan.seq[k])),
                "file": f"feeds/{W.SENDERS[s]}/{month_label(key)}.hl7",
                "index_in_file": int(plan.seq[k]) - first_seq[(s, key)],
                "message_kind": W.KIND_NAMES[int(plan.kind[k])],
                "defect": W.MALFORMED[kind],
                "reason_code": W.MALFORMED_REASON[kind],
                "accession": W.accession(int(net.cols["site"][j]), int(net.cols["seq"][j])),
            }
        )
    t0 = int(cfg.start_dt.timestamp())
    return _clean(
        {
            "format": "vigil-simulate/1",
            "seed": cfg.seed,
            "options": {
                "studies": cfg.studies,
                "months": cfg.months,
                "start": cfg.start.isoformat(),
                "stable": cfg.stable,
                "mess": cfg.mess,
            },
            "period": {"start": _iso(t0), "end": _iso(int(cfg.end_dt.timestamp()))},
            "timezone": "UTC: HL7 times without an offset are UTC; some carry an offset instead",
            "sites": [
                {
                    "code": s.code,
                    "name": s.name,
                    "character": s.character,
                    "ris": s.ris,
                    "share": s.share,
                    "patient_class_mix": dict(zip(C.PATIENT_CLASSES, s.class_mix, strict=True)),
                    "age_mean": s.age_mean,
                    "prelim_share": s.prelim_share,
                    "coded_finding_share": s.coded_share,
                }
                for s in C.SITES
            ],
            "scanners": [
                {
                    "id": s.key,
                    "site": s.site,
                    "modality": s.modality,
                    "manufacturer": s.manufacturer,
                    "model": s.model,
                    "kvp": s.kvp,
                    "slice_mm": s.slice_mm,
                    "contrast_factor": s.contrast,
                    "score_offset": s.offset,
                    "only_after_replacement": s.replacement,
                }
                for s in C.SCANNERS
            ],
            "procedures": [
                {
                    "code": p.code,
                    "name": p.name,
                    "modality": p.modality,
                    "model": C.MODELS[p.model].name if p.model >= 0 else None,
                }
                for p in C.PROCEDURES
            ],
            "models": [_model_entry(net, mi) for mi in range(len(C.MODELS))],
            "timing": {
                "triage_factor": TRIAGE_FACTOR,
                "triage_rule": "AI-positive studies after the model's go-live: first report "
                "turnaround multiplied by triage_factor",
                "read_time_factor_after_go_live": READ_FACTOR_AI,
                "read_times_fed_by": [s.code for s in C.SITES if s.ris == "RADIS"],
            },
            "events": [e.to_json() for e in net.events],
            "messages": {
                "total": len(plan),
                "by_sender": by_sender,
                "files": files,
                "mess": {
                    "crlf": int((plan.eol == 1).sum()),
                    "lf": int((plan.eol == 2).sum()),
                    "z_segments": int(plan.zseg.sum()),
                    "formatting_escapes": int(plan.esc.sum()),
                    "empty_msh7": int(plan.empty_msh7.sum()),
                    "ts_with_offset": int((plan.ts_style == 1).sum()),
                    "ts_with_fraction": int((plan.ts_style == 2).sum()),
                    "bom_files": sum(f["bom"] for f in files),
                    "batch_files": sum(f["batch"] for f in files),
                },
            },
            "malformed": malformed,
            "truth": {"file": "truth.parquet", "rows": net.n},
        }
    )


# --- model cards -------------------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v), ensure_ascii=False)


def model_card(net: Network, mi: int, acceptance: dict[str, Any]) -> str:
    """TOML with the fields of vigil.store.tables.AIModel, plus [card] extras."""
    m = C.MODELS[mi]
    modality = next(p.modality for p in C.PROCEDURES if p.code == m.procedure)
    fields = {
        "name": m.name,
        "vendor": m.vendor,
        "product": m.product,
        "finding": m.finding,
        "modality": modality,
        "body_part": m.body_part,
        "intended_use": m.intended_use,
        "clearance_id": m.clearance_id,
        "current_version": m.versions[0].version,
        "operating_threshold": m.threshold,
        "baseline_sensitivity": acceptance["sensitivity"],
        "baseline_specificity": acceptance["specificity"],
        "baseline_auc": acceptance["auc"],
        "baseline_ppv": acceptance["ppv"],
        "baseline_n": acceptance["n"],
        "baseline_period": acceptance["period"],
        "target_sensitivity": m.target_sensitivity,
        "target_specificity": m.target_specificity,
        "owner": m.owner,
        "status": "active",
    }
    lines = [f"# Model card of the simulated deployed model {m.name} (vigil simulate)."]
    lines += [f"{k} = {_toml_value(v)}" for k, v in fields.items()]
    lines.append(f"go_live_date = {_iso(net.go_live[mi])}")  # a TOML local date
    lines += [
        "",
        "[card]",
        f"sender = {_toml_value(m.sender)}",
        f"procedure_code = {_toml_value(m.procedure)}",
        "simulated = true",
        f"notes = {_toml_value('Baseline from a simulated local acceptance test before go-live.')}",
    ]
    return "\n".join(lines) + "\n"


def write_outputs(net: Network, plan: FeedPlan, out: Path) -> dict[str, Any]:
    """manifest.json, truth.parquet and models/*.toml; returns the manifest."""
    import pyarrow.parquet as pq

    man = manifest(net, plan)
    (out / "manifest.json").write_text(json.dumps(man, indent=1, ensure_ascii=False) + "\n")
    pq.write_table(truth_table(net), out / "truth.parquet", compression="zstd")
    (out / "models").mkdir(exist_ok=True)
    for mi, m in enumerate(C.MODELS):
        card = model_card(net, mi, man["models"][mi]["acceptance_test"])
        (out / "models" / f"{m.name}.toml").write_text(card)
    return man
