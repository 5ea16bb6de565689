"""The fast HL7 v2 splitter: bytes -> segments -> fields, split lazily.

hl7apy builds a full typed tree (about 45 messages/s per core); a mapping profile reads perhaps
twenty fields of a message, so this parser only splits the message into segment lines, decodes the
bytes in the MSH-18 character set, and splits a segment into fields the first time a field of it
is read. Segment order is kept exactly as received: Z-segments and unknown segments stay where they
are, nothing is regrouped. Escape sequences are decoded only on the values read.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from connectors.errors import MessageRejected
from connectors.framing import normalise
from connectors.hl7text import codec_for, unescape


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """What MSH says: enough for routing, idempotency and the ACK, without a full parse."""

    sending_application: str  # MSH-3.1
    sending_facility: str  # MSH-4.1
    receiving_application: str  # MSH-5.1
    receiving_facility: str  # MSH-6.1
    timestamp: str  # MSH-7 raw
    message_type: str  # MSH-9.1^MSH-9.2, e.g. ORU^R01
    structure: str  # MSH-9.3 (may be empty)
    control_id: str  # MSH-10
    processing_id: str  # MSH-11.1
    version: str  # MSH-12.1
    charset: str  # MSH-18 as sent ('' when absent)
    codec: str  # the Python codec used for the bytes
    field_sep: str
    encoding: str  # MSH-2

    @property
    def sender(self) -> str:
        """MSH-3^MSH-4: the sender key of the idempotency ledger."""
        return f"{self.sending_application}^{self.sending_facility}"

    @property
    def event(self) -> str:
        """The trigger event (MSH-9.2), e.g. R01."""
        return self.message_type.partition("^")[2]


_SEG_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")
_GOOD_SEPARATORS: set[str] = {"|^~\\&", "|^~\\&#"}


def _separators_ok(fs: str, enc: str) -> bool:
    """MSH-1/MSH-2: 2-5 distinct, non-alphanumeric, non-space characters."""
    chars = fs + enc
    ok = (
        2 <= len(enc) <= 5
        and len(set(chars)) == len(chars)
        and not any(c.isalnum() or c.isspace() for c in chars)
    )
    if ok and len(_GOOD_SEPARATORS) < 64:
        _GOOD_SEPARATORS.add(chars)
    return ok


def _fail(code: str, reason: str, header: MessageHeader | None = None) -> MessageRejected:
    if header is None:
        return MessageRejected(code, reason)
    return MessageRejected(
        code,
        reason,
        sender=header.sender,
        control_id=header.control_id,
        message_type=header.message_type,
    )


def _first(value: str, comp: str, rep: str) -> str:
    if rep in value:
        value = value.split(rep, 1)[0]
    if comp in value:
        value = value.split(comp, 1)[0]
    return value


def read_header(raw: bytes) -> MessageHeader:
    """Parse MSH only. Raises MessageRejected (no_msh, bad_msh, unsupported_charset)."""
    data = normalise(raw).lstrip(b" \t\r\x0b")
    if not data.startswith(b"MSH"):
        head = data[:3].decode("ascii", "replace")
        raise _fail(
            "no_msh",
            "the message does not start with an MSH segment"
            + (f" (it starts with {head!r})" if _SEG_NAME.fullmatch(head) else "")
            + ": check the sender's framing (one MSH per message; batch headers FHS/BHS "
            "must be followed by MSH)",
        )
    end = data.find(b"\r")
    line = data if end < 0 else data[:end]
    if len(line) < 8:
        raise _fail("bad_msh", "the MSH segment is truncated (fewer than 8 characters)")
    fs = chr(line[3])
    text = line.decode("latin-1")
    fields = text.split(fs)
    enc = fields[1] if len(fields) > 1 else ""
    if fs + enc not in _GOOD_SEPARATORS and not _separators_ok(fs, enc):
        raise _fail(
            "bad_msh",
            "MSH-1/MSH-2 do not declare usable separators (expected e.g. '|^~\\&'): the MSH "
            "segment is truncated or damaged",
        )
    fields = ["MSH", fs, *fields[1:]]
    charset = fields[18] if len(fields) > 18 else ""
    codec = codec_for(charset)
    comp, rep = enc[0], enc[1]
    if codec is None:
        hdr = _header_from(fields, comp, rep, charset, "latin-1")
        raise _fail(
            "unsupported_charset",
            f"MSH-18 declares character set {charset.strip()!r}, which Vigil cannot read: ask the "
            "sender for UNICODE UTF-8 or 8859/1",
            hdr,
        )
    if codec not in ("latin-1", "ascii"):
        with contextlib.suppress(UnicodeDecodeError):  # decode_message reports it, with offset
            fields = ["MSH", fs, *line.decode(codec).split(fs)[1:]]
    hdr = _header_from(fields, comp, rep, charset, codec)
    if len(fields) <= 10 or not hdr.message_type.strip("^"):
        raise _fail(
            "bad_msh",
            f"the MSH segment is truncated: it has {len(fields) - 1} fields, and MSH-9 (message "
            "type) and MSH-10 (control id) are required",
            hdr,
        )
    if not hdr.control_id:
        raise _fail("bad_msh", "MSH-10 (message control id) is empty; it is required", hdr)
    return hdr


def _header_from(fields: list[str], comp: str, rep: str, charset: str, codec: str) -> MessageHeader:
    def f(n: int) -> str:
        return fields[n] if len(fields) > n else ""

    t = f(9).split(rep, 1)[0].split(comp)
    mtype = t[0].strip()
    if len(t) > 1 and t[1].strip():
        mtype += "^" + t[1].strip()
    return MessageHeader(
        sending_application=_first(f(3), comp, rep).strip(),
        sending_facility=_first(f(4), comp, rep).strip(),
        receiving_application=_first(f(5), comp, rep).strip(),
        receiving_facility=_first(f(6), comp, rep).strip(),
        timestamp=f(7).strip(),
        message_type=mtype,
        structure=t[2].strip() if len(t) > 2 else "",
        control_id=f(10).strip(),
        processing_id=_first(f(11), comp, rep).strip(),
        version=_first(f(12), comp, rep).strip(),
        charset=charset.strip(),
        codec=codec,
        field_sep=fields[1],
        encoding=fields[2],
    )


class Segment:
    """One segment line; ``fields[n]`` is field n in HL7 numbering (MSH-1 is the separator)."""

    __slots__ = ("_fields", "line", "name", "position")

    def __init__(self, name: str, line: str, position: int) -> None:
        self.name = name
        self.line = line
        self.position = position
        self._fields: list[str] | None = None

    def fields(self, fs: str) -> list[str]:
        f = self._fields
        if f is None:
            f = self.line.split(fs)
            if self.name == "MSH":
                f.insert(1, fs)
            self._fields = f
        return f


class Message:
    """A decoded message: its header and its segments in the order received."""

    __slots__ = ("cache", "comp", "enc", "esc", "fs", "header", "index", "rep", "segments", "sub")

    def __init__(self, header: MessageHeader, text: str) -> None:
        self.header = header
        self.fs = header.field_sep
        self.enc = header.encoding
        self.comp = self.enc[0]
        self.rep = self.enc[1]
        self.esc = self.enc[2] if len(self.enc) > 2 else ""
        self.sub = self.enc[3] if len(self.enc) > 3 else "&"
        segs: list[Segment] = []
        index: dict[str, list[int]] = {}
        for line in text.split("\r"):
            if not line:
                continue
            name = line[:3]
            pos = len(segs)
            segs.append(Segment(name, line, pos))
            idx = index.get(name)
            if idx is None:
                index[name] = [pos]
            else:
                idx.append(pos)
        self.segments = segs
        self.index = index
        self.cache: dict[str, object] = {}

    # -- raw access ------------------------------------------------------------------------------

    def first(self, name: str) -> Segment | None:
        idx = self.index.get(name)
        return self.segments[idx[0]] if idx else None

    def all(self, name: str) -> list[Segment]:
        return [self.segments[i] for i in self.index.get(name, ())]

    def raw_field(self, seg: Segment, n: int) -> str:
        f = seg.fields(self.fs)
        return f[n] if len(f) > n else ""

    def value(self, seg: Segment, field: int, comp: int = 0, sub: int = 0, rep: int = 1) -> str:
        """Field (or component/subcomponent, 1-based; 0 = whole) of one repetition, unescaped."""
        f = seg._fields
        if f is None:
            f = seg.fields(self.fs)
        if len(f) <= field:
            return ""
        v = f[field]
        if not v:
            return ""
        if field <= 2 and seg.name == "MSH":
            return v
        if self.rep in v:
            reps = v.split(self.rep)
            v = reps[rep - 1] if len(reps) >= rep else ""
        elif rep > 1:
            return ""
        if comp:
            if self.comp in v:
                parts = v.split(self.comp)
                v = parts[comp - 1] if len(parts) >= comp else ""
            elif comp > 1:
                return ""
            if sub:
                if self.sub in v:
                    subs = v.split(self.sub)
                    v = subs[sub - 1] if len(subs) >= sub else ""
                elif sub > 1:
                    return ""
        if self.esc and self.esc in v:
            v = unescape(v, self.enc, self.header.codec)
        return v

    def repetitions(self, seg: Segment, field: int) -> list[str]:
        """The raw repetitions of a field (still escaped)."""
        v = self.raw_field(seg, field)
        return v.split(self.rep) if v else []

    def unescape(self, value: str) -> str:
        if self.esc and self.esc in value:
            return unescape(value, self.enc, self.header.codec)
        return value


def decode_message(raw: bytes, header: MessageHeader | None = None) -> Message:
    """Bytes of one message -> Message. Raises MessageRejected (no_msh, bad_msh, bad_encoding)."""
    data = normalise(raw).lstrip(b" \t\r\x0b")
    hdr = header or read_header(data)
    try:
        text = data.decode(hdr.codec)
    except UnicodeDecodeError as exc:
        declared = f"MSH-18 declares {hdr.charset!r}" if hdr.charset else "MSH-18 is empty"
        raise _fail(
            "bad_encoding",
            f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not valid {hdr.codec} "
            f"({declared}; an empty MSH-18 is read as UTF-8): fix the sender's character set "
            "or MSH-18",
            hdr,
        ) from None
    if "\x00" in text:
        raise _fail(
            "bad_encoding",
            f"the message contains NUL bytes, which HL7 v2 text never does (is it UTF-16 or "
            f"binary?); {hdr.codec} was expected",
            hdr,
        )
    return Message(hdr, text)
