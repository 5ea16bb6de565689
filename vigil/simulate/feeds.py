"""The feed plan (every message: when, what, who sends it, how messy) and writing it out.

The plan is a table of numpy columns sorted by send time, so a month of messages is one
contiguous slice: months are written by separate processes (fork, no copying of the network)
and ``iter_messages`` streams the same bytes in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vigil.simulate import catalog as C
from vigil.simulate import hl7_writer as W
from vigil.simulate.network import NONE, Network

MALFORMED_RATE = 0.004  # share of the messy share that is malformed
BOM = b"\xef\xbb\xbf"
EOLS = ("\r", "\r\n", "\n")

STUDY_KEYS = (
    "site", "pclass", "proc", "scanner", "sex", "race", "eth", "model", "version", "score",
    "ai_call", "rad_initial", "rad_final", "radiologist", "prelim_rad", "coded", "stat",
    "ordered", "exam_start", "exam_end", "read_start", "read_end", "text_choice", "seq",
)  # fmt: skip
PATIENT_KEYS = ("mrn", "family", "given", "birth", "street", "city", "house")


@dataclass
class FeedPlan:
    time: np.ndarray
    kind: np.ndarray
    study: np.ndarray
    sender: np.ndarray
    seq: np.ndarray  # per-sender message number (1-based), in send order
    month: np.ndarray  # year * 12 + month - 1 of the send time
    eol: np.ndarray
    zseg: np.ndarray
    esc: np.ndarray
    empty_msh7: np.ndarray
    ts_style: np.ndarray
    salt: np.ndarray
    malformed: np.ndarray
    file_bom: dict[tuple[int, int], bool]
    file_batch: dict[tuple[int, int], bool]

    def __len__(self) -> int:
        return len(self.time)

    def month_slices(self) -> list[tuple[int, int, int]]:
        """(month key, start, stop) of each month's contiguous slice."""
        keys, starts = np.unique(self.month, return_index=True)
        stops = [*starts[1:].tolist(), len(self.month)]
        return list(zip(keys.tolist(), starts.tolist(), stops, strict=True))

    def control_id(self, k: int) -> str:
        return control_id(int(self.sender[k]), int(self.seq[k]))


def control_id(sender: int, seq: int) -> str:
    if sender == W.S_SYNRIS:
        return str(50_000_000 + seq)
    return f"{W.SENDER_PREFIX[sender]}{seq:09d}"


def month_label(key: int) -> str:
    return f"{key // 12:04d}-{key % 12 + 1:02d}"


def build_plan(net: Network) -> FeedPlan:
    """Every message of the run, sorted by send time; mess drawn from its own random stream so
    that ``--mess`` never changes the network itself."""
    c = net.cols
    n = net.n
    ris = np.array([0 if s.ris == "RADIS" else 1 for s in C.SITES])[c["site"]]
    idx = np.arange(n)
    parts = [
        (c["adt_time"], W.KIND_ADT, np.ones(n, bool)),
        (c["ordered"], W.KIND_ORDER, np.ones(n, bool)),
        (c["ai_time"], W.KIND_AI, c["model"] >= 0),
        (c["prelim_time"], W.KIND_PRELIM, c["prelim_time"] != NONE),
        (c["final_time"], W.KIND_FINAL, np.ones(n, bool)),
        (c["correction_time"], W.KIND_CORR, c["correction_time"] != NONE),
        (c["addendum_time"], W.KIND_ADDENDUM, c["addendum_time"] != NONE),
        (c["a08_time"], W.KIND_A08, c["a08_time"] != NONE),
    ]
    time = np.concatenate([t[m] for t, _, m in parts])
    kind = np.concatenate([np.full(int(m.sum()), k, np.int8) for _, k, m in parts])
    study = np.concatenate([idx[m] for _, _, m in parts])
    sender = np.where(kind == W.KIND_AI, 2 + c["model"][study], ris[study]).astype(np.int8)
    order = np.lexsort((study, kind, time))
    time, kind, study, sender = time[order], kind[order], study[order], sender[order]
    seq = np.zeros(len(time), np.int64)
    for s in range(len(W.SENDERS)):
        sel = sender == s
        seq[sel] = np.arange(1, int(sel.sum()) + 1)
    month = time.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) + 1970 * 12

    m = net.config.mess
    rng = np.random.default_rng([net.config.seed, 0x5EED])
    total = len(time)
    u = rng.random(total)
    eol = np.where(u < m / 2, 1, np.where(u < m, 2, 0)).astype(np.int8)
    zseg = rng.random(total) < m
    is_report = (kind >= W.KIND_PRELIM) & (kind <= W.KIND_ADDENDUM)
    esc = (rng.random(total) < m) & is_report
    empty_msh7 = rng.random(total) < m / 2
    u = rng.random(total)
    ts_style = np.where(u < m / 2, 1, np.where(u < m, 2, 0)).astype(np.int8)
    salt = rng.integers(0, 2**31 - 1, total)
    malformed = np.zeros(total, np.int8)
    n_bad = round(total * m * MALFORMED_RATE)
    if m > 0 and total >= 50:
        n_bad = max(n_bad, 4)
    if n_bad:
        pools = {
            1: np.flatnonzero(np.ones(total, bool)),
            2: np.flatnonzero((kind == W.KIND_AI) | (kind == W.KIND_FINAL)),
            3: np.flatnonzero(kind == W.KIND_AI),
            4: np.flatnonzero(np.ones(total, bool)),
        }
        for bad_kind in (1, 2, 3, 4):
            want = n_bad // 4 + (1 if bad_kind <= n_bad % 4 else 0)
            pool = pools[bad_kind][malformed[pools[bad_kind]] == 0]
            pick = rng.choice(pool, min(want, len(pool)), replace=False)
            malformed[pick] = bad_kind
    file_bom: dict[tuple[int, int], bool] = {}
    file_batch: dict[tuple[int, int], bool] = {}
    months = np.unique(month).tolist()
    for s in range(len(W.SENDERS)):
        for mk in months:
            file_bom[(s, mk)] = bool(rng.random() < m)
            file_batch[(s, mk)] = bool(rng.random() < m)
    if m > 0:  # every messy run shows each file-level quirk at least once
        nvu, syn = month[sender == W.S_NEUROVUE], month[sender == W.S_SYNRIS]
        if len(nvu):
            file_bom[(W.S_NEUROVUE, int(nvu.min()))] = True
        if len(syn):
            file_batch[(W.S_SYNRIS, int(syn.max()))] = True
    return FeedPlan(
        time, kind, study, sender, seq, month, eol, zseg, esc, empty_msh7, ts_style, salt,
        malformed, file_bom, file_batch,
    )  # fmt: skip


def uid_root(seed: int) -> str:
    return f"1.2.826.0.1.3680043.10.999.{seed % 1_000_000}"


def _builder(net: Network, plan: FeedPlan, a: int, b: int) -> tuple[W.Builder, list[int]]:
    """A builder over the studies that the messages [a, b) touch, and their local indices."""
    studies = plan.study[a:b]
    idx = np.unique(studies)
    local = np.searchsorted(idx, studies).tolist()
    cols = W.local_lists(net.cols, idx, STUDY_KEYS)
    pidx_global = net.cols["patient"][idx]
    pidx = np.unique(pidx_global)
    cols["patient_local"] = np.searchsorted(pidx, pidx_global).tolist()
    pats = W.local_lists(net.patients, pidx, PATIENT_KEYS)
    return W.Builder(cols, pats, net.rad_table, uid_root(net.config.seed)), local


def _messages(net: Network, plan: FeedPlan, a: int, b: int) -> Iterator[tuple[int, bytes]]:
    """(sender index, raw bytes) of messages [a, b) in send order."""
    builder, local = _builder(net, plan, a, b)
    kinds = plan.kind[a:b].tolist()
    times = plan.time[a:b].tolist()
    senders = plan.sender[a:b].tolist()
    seqs = plan.seq[a:b].tolist()
    eols = plan.eol[a:b].tolist()
    zsegs = plan.zseg[a:b].tolist()
    escs = plan.esc[a:b].tolist()
    empties = plan.empty_msh7[a:b].tolist()
    styles = plan.ts_style[a:b].tolist()
    salts = plan.salt[a:b].tolist()
    bads = plan.malformed[a:b].tolist()
    build = builder.build
    for i in range(b - a):
        s = senders[i]
        bad = bads[i]
        segs = build(kinds[i], local[i], control_id(s, seqs[i]), times[i],
                     zsegs[i], escs[i], empties[i], styles[i], salts[i], bad)  # fmt: skip
        if bad == 1:
            segs = W.truncate_msh(segs, salts[i])
        eol = EOLS[eols[i]]
        raw = (eol.join(segs) + eol).encode("utf-8")
        if bad == 4:
            raw = W.garble(raw, salts[i])
        yield s, raw


def _batch_header(seg: str, sender: str, t: int, name: str) -> bytes:
    return f"{seg}|^~\\&|{sender}|NETWORK|VIGIL|COE|{W.fmt_ts(t)}||{name}\r".encode()


# state for forked workers (set before the pool starts; never pickled)
_STATE: dict[str, object] = {}


def _write_month(task: tuple[int, int, int]) -> tuple[int, int]:
    key, a, b = task
    net: Network = _STATE["net"]  # type: ignore[assignment]
    plan: FeedPlan = _STATE["plan"]  # type: ignore[assignment]
    out: Path = _STATE["out"]  # type: ignore[assignment]
    per_sender: dict[int, list[bytes]] = {}
    for s, raw in _messages(net, plan, a, b):
        per_sender.setdefault(s, []).append(raw)
    label = month_label(key)
    written = 0
    first_time = int(plan.time[a])
    for s, msgs in sorted(per_sender.items()):
        name = W.SENDERS[s]
        parts: list[bytes] = []
        if plan.file_bom[(s, key)]:
            parts.append(BOM)
        batch = plan.file_batch[(s, key)]
        if batch:
            parts.append(_batch_header("FHS", name, first_time, f"{label}.hl7"))
            parts.append(_batch_header("BHS", name, first_time, f"{label}.hl7"))
        parts.extend(msgs)
        if batch:
            parts.append(f"BTS|{len(msgs)}\rFTS|1\r".encode())
        data = b"".join(parts)
        folder = out / "feeds" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{label}.hl7").write_bytes(data)
        written += len(data)
    return b - a, written


def write_feeds(
    net: Network,
    plan: FeedPlan,
    out: Path,
    workers: int,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write every month's files; returns bytes written. Months run in ``workers`` processes."""
    tasks = plan.month_slices()
    _STATE.update(net=net, plan=plan, out=out)
    total = 0
    try:
        if workers <= 1 or len(tasks) <= 1:
            for t in tasks:
                n_msgs, nbytes = _write_month(t)
                total += nbytes
                if on_progress:
                    on_progress(n_msgs)
        else:
            import multiprocessing as mp

            # biggest months first keeps both cores busy to the end
            tasks.sort(key=lambda t: t[1] - t[2])
            with mp.get_context("fork").Pool(workers) as pool:
                for n_msgs, nbytes in pool.imap_unordered(_write_month, tasks):
                    total += nbytes
                    if on_progress:
                        on_progress(n_msgs)
    finally:
        _STATE.clear()
    return total


def iter_plan_messages(net: Network, plan: FeedPlan) -> Iterator[tuple[str, bytes]]:
    """Every message of the run, in send order across all senders (no batch wrappers or BOM)."""
    for _key, a, b in plan.month_slices():
        for s, raw in _messages(net, plan, a, b):
            yield W.SENDERS[s], raw
