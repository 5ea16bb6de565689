"""Pseudonymisation: the only place where identifiers are read, and where they stop.

Patient pseudonym = HMAC-SHA256(pseudonym_secret, "<assigning authority>|<MRN>") in hex: the
same patient from the same authority always gets the same pseudonym (so studies link up), and
without the secret nobody can go back to the MRN. '|' cannot occur unescaped inside an HL7 field,
so the two parts cannot run into each other. Staff (radiologists) get their own namespace so that
a staff id can never collide with a patient id. Birth dates become an age in whole years at the
time of the study and are then dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from functools import lru_cache


class Pseudonymiser:
    """HMAC pseudonyms with one secret; cached because MRNs repeat across a feed."""

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        # keyed once; each pseudonym copies it (about two thirds of hmac.new's cost, which
        # re-derives the padded keys every time: a 1M-study year misses the cache for most
        # patients)
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self.patient = lru_cache(maxsize=65536)(self._patient)
        self.staff = lru_cache(maxsize=4096)(self._staff)

    def _hmac(self, text: str) -> str:
        h = self._keyed.copy()
        h.update(text.encode())
        return h.hexdigest()

    def _patient(self, authority: str, mrn: str) -> str:
        return self._hmac(f"{authority}|{mrn}")

    def _staff(self, ident: str) -> str:
        return "rad-" + self._hmac(f"staff|{ident}")[:16]


def patient_pseudonym(secret: str | bytes, authority: str, mrn: str) -> str:
    """The patient pseudonym, for tools that must compute it outside the pipeline."""
    return Pseudonymiser(secret).patient(authority, mrn)


def age_in_years(birth: datetime | None, at: datetime | None) -> int | None:
    """Whole years from birth to ``at``; None when unknown or impossible (negative, > 130)."""
    if birth is None or at is None:
        return None
    # the calendar fields of ``at`` as given (its zone is not converted away, only ignored)
    years = at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))
    if years < 0 or years > 130:
        return None
    return years


_BIRTH = re.compile(r"\s*(\d{4})(\d{2})?(\d{2})?")


def birth_date(value: str) -> datetime | None:
    """YYYY[MM[DD]] from a DT/DTM birth date (time and offset ignored: only the day matters)."""
    head = (value or "")[:8]
    if len(head) == 8 and head.isascii() and head.isdigit():  # YYYYMMDD..., without the regex
        try:
            return datetime(int(head[:4]), int(head[4:6]), int(head[6:]))
        except ValueError:
            return None
    m = _BIRTH.match(value or "")
    if m is None:
        return None
    try:
        return datetime(int(m.group(1)), int(m.group(2) or 7), int(m.group(3) or 1))
    except ValueError:
        return None


_LONG_NUMBER = re.compile(r"\d[\d\-/.]{4,}\d")
_NON_WORD = re.compile(r"(\W+)")


def scrub(phrase: str, identifiers: set[str]) -> str:
    """Remove identifiers from a deciding phrase: known name/id tokens and long numbers/dates."""
    out = _LONG_NUMBER.sub("#", phrase)
    if identifiers:
        words = _NON_WORD.split(out)
        out = "".join("#" if w.lower() in identifiers else w for w in words)
    return out
