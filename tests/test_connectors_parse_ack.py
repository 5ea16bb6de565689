"""The fast ACK builder gives byte for byte what hl7apy builds, for every sample and code."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.ack import ERROR_BY_REASON, build_ack, build_ack_hl7apy
from connectors.framing import split_messages
from connectors.parse import read_header

NOW = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
ERRORS = [None, "missing_accession: no accession in OBR-18 | fix ^ the & sender ~ \\ #1", "x" * 400]


def test_same_bytes_as_hl7apy_on_every_sample(samples_dir: Path) -> None:
    n = 0
    for path in sorted(samples_dir.glob("*.hl7")):
        for raw in split_messages(path.read_bytes()):
            for code in ("AA", "AE", "AR"):
                for err in ERRORS if code != "AA" else [None]:
                    assert build_ack(raw, code, err, now=NOW) == build_ack_hl7apy(
                        raw, code, err, now=NOW
                    ), (path.name, code, err)
                    n += 1
    assert n > 150


@pytest.mark.parametrize(
    "version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8", "9.9", ""]
)
def test_same_bytes_per_version(version: str) -> None:
    raw = f"MSH|^~\\&|RADIS|NGH|VIGIL|CoE|20260301||ORU^R01|C1|P|{version}\r".encode()
    cases = [("AA", None), ("AR", "no_msh")] + [("AE", r) for r in (None, *ERROR_BY_REASON)]
    # every reason's ERR layout on one version of each ERR shape (2.4: ERR-1, 2.5: ERR-3)
    for code, reason in cases if version in ("2.4", "2.5") else cases[:3]:
        fast = build_ack(raw, code, "bad", now=NOW, reason_code=reason)
        assert fast == build_ack_hl7apy(raw, code, "bad", now=NOW, reason_code=reason)


def test_ack_content() -> None:
    raw = b"MSH|^~\\&|RADIS|NGH|VIGIL|CoE|20260301||ORU^R01|C77|T|2.5\rPID|1\r"
    ack = build_ack(
        read_header(raw),
        "AE",
        "missing_accession: no accession",
        now=NOW,
        reason_code="missing_accession",
    )
    segs = ack.decode().split("\r")
    assert segs[0] == ("MSH|^~\\&|VIGIL|CoE|RADIS|NGH|20260301123005+0000||ACK^R01^ACK|AC77|T|2.5")
    assert segs[1] == "MSA|AE|C77|missing_accession: no accession"
    assert segs[2] == (
        "ERR|||101^Required field missing^HL70357|E||||missing_accession: no accession"
    )
    assert build_ack(raw, "AA", now=NOW).decode().split("\r")[1] == "MSA|AA|C77"
    # no usable MSH: still an ACK the sender can read
    assert build_ack(b"garbage", "AR", "no_msh", now=NOW).startswith(b"MSH|^~\\&|VIGIL|")
    with pytest.raises(ValueError):
        build_ack(raw, "XX")
