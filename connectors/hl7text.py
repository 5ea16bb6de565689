"""HL7 v2 text rules: escape sequences, MSH-18 character sets and timestamps.

Kept apart from the splitter because they are pure functions with their own property tests
(escape/unescape round trips, timestamp edge cases), and because the hot path only calls them on
the few fields a profile actually reads.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# MSH-18 values (HL7 table 0211) -> Python codec. Empty means "not declared": UTF-8 in practice.
CHARSETS: dict[str, str] = {
    "": "utf-8",
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UNICODE": "utf-8",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "ISO IR6": "ascii",
    "ISO IR100": "latin-1",
    "ISO IR101": "iso8859-2",
    "ISO IR144": "iso8859-5",
    "ISO IR192": "utf-8",
    "WINDOWS-1252": "cp1252",
    "CP1252": "cp1252",
}


def codec_for(charset: str) -> str | None:
    """Python codec for an MSH-18 value (first repetition), or None if Vigil cannot read it."""
    key = charset.split("~", 1)[0].strip().upper()
    return CHARSETS.get(key)


# ---------------------------------------------------------------------------------------------
# Escape sequences


_HEX = re.compile(r"[0-9A-Fa-f]*")
_FORMATTING = {".br": "\n", ".sp": "\n", ".fi": "", ".nf": "", ".in": "", ".ti": "", ".ce": "\n"}


def unescape(value: str, enc: str = "^~\\&", codec: str = "utf-8") -> str:
    """Decode HL7 escape sequences in one field value.

    ``enc`` is MSH-2 (component, repetition, escape, subcomponent[, truncation]). ``\\Xhh..\\``
    becomes bytes decoded in the message's character set; highlighting (\\H\\ \\N\\) and
    character-set switches (\\C..\\ \\M..\\) are dropped; an unknown or unterminated sequence is
    kept literally rather than lost.
    """
    esc = enc[2] if len(enc) > 2 else ""
    if not esc or esc not in value:
        return value
    comp, rep = enc[0], enc[1]
    sub = enc[3] if len(enc) > 3 else "&"
    trunc = enc[4] if len(enc) > 4 else None
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        j = value.find(esc, i)
        if j < 0:
            out.append(value[i:])
            break
        out.append(value[i:j])
        k = value.find(esc, j + 1)
        if k < 0:  # unterminated: keep the rest as it is
            out.append(value[j:])
            break
        seq = value[j + 1 : k]
        rep_text = _decode_sequence(seq, comp, rep, esc, sub, trunc, codec)
        if rep_text is None:  # unknown: keep literally, including both escape chars
            out.append(value[j : k + 1])
        else:
            out.append(rep_text)
        i = k + 1
    return "".join(out)


def _decode_sequence(
    seq: str, comp: str, rep: str, esc: str, sub: str, trunc: str | None, codec: str
) -> str | None:
    if seq == "F":
        return "|"
    if seq == "S":
        return comp
    if seq == "T":
        return sub
    if seq == "R":
        return rep
    if seq == "E":
        return esc
    if seq == "P" and trunc:
        return trunc
    if seq in ("H", "N"):
        return ""
    if not seq:
        return None
    head = seq[0]
    if head == "X" or head == "x":
        hexdigits = seq[1:]
        if len(hexdigits) % 2 or not _HEX.fullmatch(hexdigits):
            return None
        try:
            return bytes.fromhex(hexdigits).decode(codec)
        except (UnicodeDecodeError, LookupError):
            return bytes.fromhex(hexdigits).decode("latin-1")
    if head in "CMZ":
        return ""
    if head == ".":
        cmd = seq[:3]
        if cmd in _FORMATTING:
            count = seq[3:].lstrip("+-")
            if cmd == ".sp" and count.isdigit():
                return "\n" * max(int(count), 1)
            return _FORMATTING[cmd]
    return None


def escape(value: str, enc: str = "^~\\&") -> str:
    """Escape a text so it can sit in one HL7 field: the inverse of :func:`unescape`.

    Line breaks become ``\\.br\\`` (CR/LF are segment terminators and may not appear in a field).
    """
    esc = enc[2] if len(enc) > 2 else "\\"
    comp, rep = enc[0], enc[1]
    sub = enc[3] if len(enc) > 3 else "&"
    trunc = enc[4] if len(enc) > 4 else None
    table = {
        esc: f"{esc}E{esc}",
        "|": f"{esc}F{esc}",
        comp: f"{esc}S{esc}",
        rep: f"{esc}R{esc}",
        sub: f"{esc}T{esc}",
        "\r\n": f"{esc}.br{esc}",
        "\n": f"{esc}.br{esc}",
        "\r": f"{esc}.br{esc}",
    }
    if trunc:
        table[trunc] = f"{esc}P{esc}"
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        if value.startswith("\r\n", i):
            out.append(table["\r\n"])
            i += 2
            continue
        ch = value[i]
        out.append(table.get(ch, ch))
        i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Timestamps


class BadTimestamp(ValueError):
    """A DTM/TS value that is not an HL7 timestamp."""


# YYYY[MM[DD[HH[MM[SS[.S{1,4}]]]]]][+/-ZZZZ]; also ISO-8601 with '-', ':' and a 'T' separator.
_TS = re.compile(
    r"(?P<y>\d{4})(?:-?(?P<mo>\d{2})(?:-?(?P<d>\d{2})"
    r"(?:[T ]?(?P<h>\d{2})(?::?(?P<mi>\d{2})(?::?(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?)?)?)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}:?\d{2}|[+-]\d{2})?"
)


@lru_cache(maxsize=64)
def site_zone(name: str) -> tzinfo:
    """A timezone by IANA name ('UTC' and '' mean UTC)."""
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadTimestamp(f"unknown timezone {name!r}") from exc


def parse_ts(value: str, default_tz: tzinfo = UTC) -> datetime | None:
    """HL7 DTM/TS -> timezone-aware UTC datetime; empty -> None; malformed -> BadTimestamp.

    A value without an offset is local time at the site (``default_tz``). Only the first
    component is read (TS in v2.3-2.5 has a degree-of-precision second component).
    """
    if not value:
        return None
    n = len(value)
    if (n == 14 or n == 12 or n == 8) and value.isdigit():  # the common case, without the regex
        try:
            dt = datetime(
                int(value[:4]),
                int(value[4:6]),
                int(value[6:8]),
                int(value[8:10] or 0),
                int(value[10:12] or 0),
                int(value[12:14] or 0),
                tzinfo=default_tz,
            )
        except ValueError as exc:
            raise BadTimestamp(f"{value!r} is not a valid date/time") from exc
        return dt if default_tz is UTC else dt.astimezone(UTC)
    v = value.split("^", 1)[0].strip()
    if not v or v == '""':
        return None
    m = _TS.fullmatch(v)
    if m is None:
        raise BadTimestamp(f"{value!r} is not an HL7 timestamp (YYYYMMDD[HHMM[SS[.S]]][+ZZZZ])")
    g = m.group
    frac = g("f") or ""
    try:
        dt = datetime(
            int(g("y")),
            int(g("mo") or 1),
            int(g("d") or 1),
            int(g("h") or 0),
            int(g("mi") or 0),
            int(g("s") or 0),
            int((frac + "000000")[:6]) if frac else 0,
        )
    except ValueError as exc:
        raise BadTimestamp(f"{value!r} is not a valid date/time") from exc
    tz = g("tz")
    if tz:
        if tz == "Z":
            zone: tzinfo = UTC
        else:
            digits = tz[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
            if hours > 14 or minutes > 59:
                raise BadTimestamp(f"{value!r} has an impossible UTC offset")
            off = timedelta(hours=hours, minutes=minutes)
            zone = timezone(-off if tz[0] == "-" else off)
        dt = dt.replace(tzinfo=zone)
    elif isinstance(default_tz, ZoneInfo):
        dt = dt.replace(tzinfo=default_tz)
    else:
        dt = dt.replace(tzinfo=default_tz)
    return dt.astimezone(UTC)


def parse_date(value: str) -> datetime | None:
    """A birth date (DT or DTM) -> naive date-time, or None when empty or not a date.

    Birth dates are only used to compute an age, so a malformed one yields None rather than a
    rejection: the rest of the message is still worth keeping.
    """
    try:
        dt = parse_ts(value, UTC)
    except BadTimestamp:
        return None
    return dt.replace(tzinfo=None) if dt is not None else None
