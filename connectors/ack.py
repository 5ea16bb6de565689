"""HL7 acknowledgements (MSH + MSA [+ ERR]) for the MLLP listener.

Built by string formatting on the hot path (hl7apy needs ~1 ms per ACK); a test proves the bytes
equal hl7apy's for every version and code (``build_ack_hl7apy`` is that reference). The ACK is
written in the original message's version when hl7apy's tables agree with the standard for it
(2.3 to 2.7); 2.8 and later, or an unknown version, get a 2.7 ACK, because hl7apy 1.3.5 lays out
ERR wrongly for 2.8.
"""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.errors import MessageRejected
from connectors.hl7text import escape
from connectors.parse import MessageHeader, read_header

ACK_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7")
# HL7 table 0357 (message error condition codes) for each MessageRejected reason code
_E0357 = {
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    200: "Unsupported message type",
    204: "Unknown key identifier",
    207: "Application internal error",
}
ERROR_BY_REASON = {
    "no_msh": 100,
    "bad_msh": 100,
    "missing_segment": 100,
    "missing_accession": 101,
    "missing_patient_id": 101,
    "missing_site": 101,
    "missing_score": 101,
    "missing_version": 101,
    "bad_score": 102,
    "bad_timestamp": 102,
    "bad_encoding": 102,
    "unsupported_charset": 102,
    "bad_call": 103,
    "bad_code": 103,
    "bad_status": 103,
    "unsupported_type": 200,
    "unknown_sender": 204,
}


def error_code(reason_code: str | None) -> str:
    """The ERR-3 coded error for a rejection reason (207 application error when unknown)."""
    n = ERROR_BY_REASON.get(reason_code or "", 207)
    return f"{n}^{_E0357[n]}^HL70357"


_ENC = "^~\\&"


def _version(v: str) -> str:
    if v in ACK_VERSIONS:
        return v
    return "2.7" if v else "2.5"  # 2.8+ (or unknown) -> 2.7; no readable MSH -> 2.5


def _fields(raw_or_header: bytes | MessageHeader | None) -> MessageHeader | None:
    if isinstance(raw_or_header, MessageHeader) or raw_or_header is None:
        return raw_or_header
    try:
        return read_header(raw_or_header)
    except MessageRejected:
        return None


def _parts(
    h: MessageHeader | None,
    code: str,
    error: str | None,
    now: datetime | None,
    control_id: str | None,
    reason_code: str | None = None,
) -> dict[str, str]:
    if code not in ("AA", "AE", "AR", "CA", "CE", "CR"):
        raise ValueError(f"ACK code must be AA, AE or AR, not {code!r}")
    when = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")
    version = _version(h.version if h else "")
    trigger = h.event if h else ""
    orig_id = h.control_id if h else ""
    enc = _ENC + "#" if version >= "2.7" else _ENC  # hl7apy writes the truncation char in 2.7
    # '#' is the 2.7 truncation character; hl7apy mangles its escape, so it is left out of texts
    clean = " ".join(error.replace("#", " ").split()) if error else ""
    text = escape(clean[:200], enc)
    return {
        "enc": enc,
        "msh3": "VIGIL",
        "msh4": escape(h.receiving_facility, enc) if h else "",
        "msh5": escape(h.sending_application, enc) if h else "",
        "msh6": escape(h.sending_facility, enc) if h else "",
        "msh7": when,
        "msh9": f"ACK^{trigger}^ACK" if trigger else "ACK",
        "msh10": control_id or ("A" + orig_id)[:20] or "A",
        "msh11": (h.processing_id if h else "") or "P",
        "msh12": version,
        "msa1": code,
        "msa2": escape(orig_id, enc),
        "text": text,
        "err": error_code(reason_code) if code != "AA" else "",
    }


def build_ack(
    raw_or_header: bytes | MessageHeader | None,
    code: str,
    error: str | None = None,
    *,
    now: datetime | None = None,
    control_id: str | None = None,
    reason_code: str | None = None,
) -> bytes:
    """The ACK for one message: CR-separated, no MLLP framing. ``error`` must not hold PHI.

    ``reason_code`` (a MessageRejected reason code) picks the ERR-3 code from HL7 table 0357.
    """
    p = _parts(_fields(raw_or_header), code, error, now, control_id, reason_code)
    msh = "|".join(
        [
            "MSH",
            p["enc"],
            p["msh3"],
            p["msh4"],
            p["msh5"],
            p["msh6"],
            p["msh7"],
            "",
            p["msh9"],
            p["msh10"],
            p["msh11"],
            p["msh12"],
        ]
    )
    msa_fields = ["MSA", p["msa1"], p["msa2"], p["text"]]
    while not msa_fields[-1]:
        msa_fields.pop()
    msa = "|".join(msa_fields)
    segs = [msh, msa]
    if p["err"]:
        if p["msh12"] < "2.5":
            code_, name, table = p["err"].split("^")
            segs.append(f"ERR|^^^{code_}&{name}&{table}")
        else:
            segs.append("ERR|||" + p["err"] + "|E" + ("||||" + p["text"] if p["text"] else ""))
    return ("\r".join(segs)).encode("utf-8")


def build_ack_hl7apy(
    raw_or_header: bytes | MessageHeader | None,
    code: str,
    error: str | None = None,
    *,
    now: datetime | None = None,
    control_id: str | None = None,
    reason_code: str | None = None,
) -> bytes:
    """The same ACK built with hl7apy: the reference the fast builder is tested against."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.core import Message

    p = _parts(_fields(raw_or_header), code, error, now, control_id, reason_code)
    m = Message("ACK", version=p["msh12"], validation_level=VALIDATION_LEVEL.TOLERANT)
    for n in (3, 4, 5, 6, 7, 9, 10, 11):
        value = p[f"msh{n}"]
        if value:
            setattr(m.msh, f"msh_{n}", value)
    m.add_segment("MSA")
    m.msa.msa_1 = p["msa1"]
    if p["msa2"]:
        m.msa.msa_2 = p["msa2"]
    if p["text"]:
        m.msa.msa_3 = p["text"]
    if p["err"]:
        m.add_segment("ERR")
        if p["msh12"] < "2.5":
            code_, name, table = p["err"].split("^")
            m.err.err_1 = f"^^^{code_}&{name}&{table}"
        else:
            m.err.err_3 = p["err"]
            m.err.err_4 = "E"
            if p["text"]:
                m.err.err_8 = p["text"]
    return m.to_er7().encode("utf-8")
