"""The simulator's files: reproducible bytes, valid HL7 (checked with hl7apy), the contract's
field positions, the messy share and the malformed messages the manifest lists."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hl7apy.parser import parse_message

from vigil.simulate import SimulationConfig, iter_messages, simulate, truth_frame

BATCH = (b"FHS|", b"BHS|", b"BTS|", b"FTS|")


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def split_file(data: bytes) -> list[bytes]:
    """Messages of one feed file, each with its own terminators; BOM and batch segments dropped."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    msgs: list[bytes] = []
    pos = 0
    for line in data.splitlines(keepends=True):
        if line.startswith(BATCH):
            pos += len(line)
            continue
        if line.startswith(b"MSH|"):
            msgs.append(line)
        else:
            msgs[-1] += line
        pos += len(line)
    return msgs


def normalise(raw: bytes) -> str:
    return raw.decode("utf-8").replace("\r\n", "\r").replace("\n", "\r").rstrip("\r")


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    simulate(SimulationConfig(studies=30, months=1, seed=3, mess=0.0, out=out))
    return out


@pytest.fixture(scope="module")
def clean_parsed(clean: Path) -> list[tuple[str, bytes, object]]:
    """(sender folder, raw bytes, hl7apy message) of every message, parsed once (hl7apy is slow)."""
    out = []
    for path in sorted((clean / "feeds").rglob("*.hl7")):
        data = path.read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf")
        for raw in split_file(data):
            out.append((path.parent.name, raw, parse_message(normalise(raw), find_groups=False)))
    return out


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("messy")
    simulate(SimulationConfig(studies=20, months=1, seed=4, mess=1.0, out=out))
    return out


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    runs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        simulate(SimulationConfig(studies=300, months=2, seed=seed, out=tmp_path / name))
        runs.append(digest(tmp_path / name))
    assert runs[0] == runs[1]
    assert len(runs[0]) > 8
    differing = [k for k in runs[0] if runs[0][k] != runs[2].get(k)]
    assert any(k.startswith("feeds/") for k in differing)
    assert "truth.parquet" in differing


def test_iter_messages_streams_the_file_bytes_in_send_order(tmp_path: Path) -> None:
    cfg = SimulationConfig(studies=200, months=2, seed=8, mess=0.2, out=tmp_path)
    simulate(cfg)
    streamed = list(iter_messages(cfg))
    by_sender: dict[str, list[bytes]] = {}
    for sender, raw in streamed:
        by_sender.setdefault(sender, []).append(raw)
    assert set(by_sender) == {"RADIS", "SYNRIS", "NEUROVUE", "LUNGSIGHT"}
    for sender, msgs in by_sender.items():
        from_files = [
            m for p in sorted((tmp_path / "feeds" / sender).glob("*.hl7"))
            for m in split_file(p.read_bytes())
        ]  # fmt: skip
        assert b"".join(from_files) == b"".join(msgs)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert len(streamed) == manifest["messages"]["total"]


def test_every_clean_message_parses_with_hl7apy(clean: Path, clean_parsed) -> None:
    seen_types: set[tuple[str, str]] = set()
    n = 0
    for sender, raw, msg in clean_parsed:
        assert raw.endswith(b"\r") and b"\n" not in raw
        assert msg.msh.msh_12.value == "2.5"
        assert msg.msh.msh_3.value == sender
        assert msg.msh.msh_7.value
        seen_types.add((sender, msg.msh.msh_9.value))
        n += 1
    manifest = json.loads((clean / "manifest.json").read_text())
    assert n == manifest["messages"]["total"]
    assert manifest["malformed"] == []
    assert {t for _, t in seen_types} >= {
        "ADT^A04^ADT_A01", "ADT^A01^ADT_A01", "ORM^O01", "OMI^O23^OMI_O23", "ORU^R01^ORU_R01",
    }  # fmt: skip


def test_accession_sits_where_the_contract_says(clean: Path, clean_parsed) -> None:
    truth = truth_frame(clean)
    known = set(zip(truth["site"], truth["accession"], strict=True))
    uids = set(truth["study_uid"])

    def segs(msg) -> dict[str, object]:
        out: dict[str, object] = {}
        for s in msg.children:
            out.setdefault(s.name, s)
        return out

    checked = {"RADIS": 0, "SYNRIS": 0, "NEUROVUE": 0, "LUNGSIGHT": 0}
    for sender, _raw, msg in clean_parsed:
        mtype = msg.msh.msh_9.value
        site = msg.msh.msh_4.value
        s = segs(msg)
        if sender == "RADIS" and mtype.startswith(("ORM", "ORU")):
            acc = s["OBR"].obr_18.value
            if mtype.startswith("ORM"):
                assert s["ZDS"].zds_1.value.split("^")[0] in uids
        elif sender == "SYNRIS" and mtype.startswith("OMI"):
            acc = s["IPC"].ipc_1.value
            assert s["IPC"].ipc_3.value in uids
        elif (sender == "SYNRIS" and mtype.startswith("ORU")) or sender == "NEUROVUE":
            acc = s["OBR"].obr_3.value
        elif sender == "LUNGSIGHT":
            acc = s["ORC"].orc_3.value
            assert s["SFT"].sft_2.value
        else:
            continue
        assert (site, acc) in known, (sender, mtype, site, acc)
        checked[sender] += 1
    assert all(checked.values()), checked


def test_reports_carry_status_read_times_and_coded_findings(clean_parsed) -> None:
    statuses, coded, obr32_times = set(), 0, 0
    for sender, _raw, msg in clean_parsed:
        if sender != "RADIS" or not msg.msh.msh_9.value.startswith("ORU"):
            continue
        obr = next(s for s in msg.children if s.name == "OBR")
        statuses.add(obr.obr_25.value)
        parts = obr.obr_32.value.split("^")
        if obr.obr_25.value == "F":
            assert len(parts) == 3 and parts[1] <= parts[2], obr.obr_32.value
            obr32_times += 1
        for s in msg.children:
            if s.name == "OBX" and s.obx_2.value == "CWE":
                assert s.obx_5.value in ("Y", "N", "U")
                coded += 1
    assert "F" in statuses and obr32_times and coded


def test_messy_messages_parse_after_normalising_and_malformed_are_listed(messy: Path) -> None:
    manifest = json.loads((messy / "manifest.json").read_text())
    bad = {(m["file"], m["index_in_file"]): m for m in manifest["malformed"]}
    assert {m["defect"] for m in bad.values()} == {
        "truncated_msh", "missing_accession", "non_numeric_score", "garbage_bytes",
    }  # fmt: skip
    assert {m["reason_code"] for m in bad.values()} == {
        "bad_msh", "missing_accession", "bad_score", "bad_encoding",
    }  # fmt: skip
    mess = manifest["messages"]["mess"]
    assert mess["crlf"] and mess["lf"] and mess["empty_msh7"] and mess["ts_with_offset"]
    assert mess["bom_files"] and mess["batch_files"] and mess["z_segments"]
    found = set()
    parsed = 0
    for path in sorted((messy / "feeds").rglob("*.hl7")):
        rel = str(path.relative_to(messy))
        for i, raw in enumerate(split_file(path.read_bytes())):
            entry = bad.get((rel, i))
            if entry is None:
                msg = parse_message(normalise(raw), find_groups=False)
                assert msg.msh.msh_3.value == path.parent.name
                parsed += 1
                continue
            found.add((rel, i))
            defect = entry["defect"]
            if defect == "garbage_bytes":
                with pytest.raises(UnicodeDecodeError):
                    raw.decode("utf-8")
                continue
            text = normalise(raw)
            if defect == "truncated_msh":
                assert entry["control_id"] not in text.split("\r")[0]
                assert len(text.split("\r")[0].split("|")) < 9
            elif defect == "missing_accession":
                assert entry["accession"] not in text
            elif defect == "non_numeric_score":
                assert entry["control_id"] in text
                values = [
                    seg.split("|")[9 if path.parent.name == "LUNGSIGHT" else 5]
                    for seg in text.split("\r")
                    if seg.startswith("OBX|1|")
                ]
                with pytest.raises(ValueError):
                    float(values[0])
    assert found == set(bad)
    assert parsed > 40
