"""Errors of the parse and map layers.

A rejected message carries a stable ``reason_code`` (for dashboards and dead-letter filters) and a
``reason`` sentence an integration engineer can act on. Reasons never quote patient data: they
name segments, fields and codes, never values taken from PID/NK1 or report text.
"""

from __future__ import annotations

from vigil.errors import VigilError

# Every reason code a MessageRejected may carry, with what it means (README, dead-letter page).
REASON_CODES: dict[str, str] = {
    "no_msh": "the bytes do not start with an MSH segment",
    "bad_msh": "the MSH segment is truncated or its encoding characters are unusable",
    "too_large": "the message is larger than max_message_bytes",
    "bad_encoding": "the bytes are not valid in the character set MSH-18 declares",
    "unsupported_charset": "MSH-18 names a character set Vigil does not read",
    "unsupported_type": "MSH-9 names a message type the sender's profile does not map",
    "unknown_sender": "no mapping profile matches MSH-3/MSH-4 and there is no fallback",
    "missing_segment": "a segment the message type needs (PID, OBR, MRG...) is absent",
    "missing_accession": "none of the profile's accession fields holds a value",
    "missing_site": "none of the profile's site fields holds a value",
    "missing_patient_id": "PID-3 (or MRG-1 on a merge) holds no identifier",
    "missing_score": "an AI result has neither a score nor a call",
    "missing_version": "an AI result does not say which algorithm version produced it",
    "bad_score": "the AI score is not a number, or lies outside the profile's score_range",
    "bad_call": "the AI call is not one of the values in the profile's call_map",
    "bad_code": "a coded finding holds a value the profile's coded_map does not list",
    "bad_timestamp": "a date/time field the mapping uses is not an HL7 timestamp",
    "bad_status": "the report status (OBR-25) is not one Vigil understands",
    "malformed": "the message has a shape no mapping rule foresaw (see the reason)",
    "unreadable_report": "the report is only encapsulated data (PDF/CDA in OBX ED), not text",
}


class MessageRejected(VigilError):
    """One message that cannot become events; the transport layer dead-letters it and NAKs."""

    def __init__(
        self,
        reason_code: str,
        reason: str,
        *,
        sender: str = "",
        control_id: str = "",
        message_type: str = "",
    ) -> None:
        self.reason_code = reason_code
        self.reason = reason
        self.sender = sender
        self.control_id = control_id
        self.message_type = message_type
        super().__init__(f"{reason_code}: {reason}")


class ProfileError(VigilError):
    """A mapping profile file is invalid: names the file, the key and the fix."""

    def __init__(self, path: str, key: str, problem: str, fix: str) -> None:
        self.path, self.key, self.problem, self.fix = path, key, problem, fix
        super().__init__(f"profile {path}: key {key!r}: {problem}. Fix: {fix}")
