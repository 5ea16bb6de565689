"""PHI: after ingesting simulated feeds (with dead letters, over files and over MLLP), no
patient name, MRN, birth date or street address appears anywhere in the database: every table,
every text, JSON and binary column, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from connectors_transport_support import ack_code, dump_database, frame

from connectors.ingest import ingest_files, iter_files
from connectors.mllp import MLLPListener
from connectors.pipeline import Pipeline
from connectors.store_writer import StoreWriter
from vigil.simulate import SimulationConfig, simulate

END = b"\x1c\x0d"


def _identifiers(raws: list[bytes]) -> set[str]:
    """Names, MRNs, birth dates and streets read straight from PID (independent of the parser)."""
    out: set[str] = set()
    vocabulary: set[str] = set()  # race/ethnicity words: "White" is a surname and a race
    for raw in raws:
        for seg in re.split(rb"\r\n|\r|\n", raw):
            if not seg.startswith(b"PID|"):
                continue
            f = seg.decode("utf-8", "replace").split("|")

            def get(i: int, f: list[str] = f) -> str:
                return f[i] if len(f) > i else ""

            mrn = get(3).split("^")[0]
            if len(mrn) >= 5:
                out.add(mrn)
            for part in get(5).split("^")[:2]:
                if len(part) >= 4:
                    out.add(part)
            dob = get(7)[:8]
            if len(dob) == 8 and dob.isdigit():
                out.add(dob)
                out.add(f"{dob[:4]}-{dob[4:6]}-{dob[6:]}")
            street = get(11).split("^")[0]
            if len(street) >= 6:
                out.add(street)
            for i in (10, 22):
                vocabulary.update(w for c in get(i).split("^") for w in c.split())
    return out - vocabulary


def _all_values(url: str) -> list[tuple[str, str]]:
    """(table.column-ish label, text) for every non-null cell of every table."""
    out = []
    for table, rows in dump_database(url).items():
        for row in rows:
            for v in row:
                if v is None or isinstance(v, int | float | bool):
                    continue
                if isinstance(v, bytes | bytearray | memoryview):
                    text = bytes(v).decode("latin-1")
                elif isinstance(v, dict | list):
                    text = json.dumps(v)
                else:
                    text = str(v)
                out.append((table, text))
    return out


def test_no_patient_identifier_anywhere_in_the_database(settings, engine, tmp_path: Path):
    out = tmp_path / "sim"
    simulate(SimulationConfig(studies=150, months=1, seed=4, mess=0.6, out=out))
    files = iter_files([out / "feeds"])
    raws = [r for f in files for r in re.split(rb"(?=MSH\|)", f.read_bytes()) if r]
    summary = ingest_files(files, settings, engine, workers=0)
    assert summary.outcomes["stored"] > 300
    assert summary.outcomes["deadletter"] > 0  # encrypted raw bytes are in the database too

    # a few messages over MLLP too (the listener's dead letters and ledger)
    extra = [r.replace(b"|P|2.5", b"|P|2.5", 1) for r in raws[:20]]
    extra = [re.sub(rb"^(MSH(?:\|[^|\r\n]*){8}\|)([^|]*)", rb"\1L\2", r) for r in extra]

    async def over_mllp() -> None:
        lis = MLLPListener(
            StoreWriter(engine, settings.deadletter_key.get_secret_value()), Pipeline(settings)
        )
        port = await lis.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(frame(r) for r in extra))
        for _ in extra:
            ack_code((await reader.readuntil(END))[1:-2])
        writer.close()
        await lis.shutdown()

    asyncio.run(over_mllp())

    idents = _identifiers(raws)
    assert len(idents) > 200
    pattern = re.compile(
        "|".join(rf"(?<![\w.]){re.escape(t)}(?![\w.])" for t in sorted(idents, key=len)[::-1])
    )
    values = _all_values(settings.effective_database_url)
    assert len(values) > 1000
    hits = [(table, m.group(0)) for table, text in values for m in [pattern.search(text)] if m]
    assert sorted(set(hits)) == []
