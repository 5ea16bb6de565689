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
from typing import NamedTuple

from connectors.errors import MessageRejected
from connectors.framing import normalise
from connectors.hl7text import codec_for, unescape


class MessageHeader(NamedTuple):
    """What MSH says: enough for routing, idempotency and the ACK, without a full parse.

    A NamedTuple rather than a frozen dataclass: one is built per message, and a frozen
    dataclass of 14 fields costs about six times as much to construct.
    """

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
    return _read_header(normalise(raw).lstrip(b" \t\r\x0b"))


def _read_header(data: bytes) -> MessageHeader:
    """MSH of bytes already normalised and left-stripped (shared by read_header and prepare)."""
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
    ascii_line = line.isascii()
    # every codec Vigil reads is a superset of ASCII: an ASCII line reads the same in all of them
    text = line.decode("ascii" if ascii_line else "latin-1")
    fields = text.split(fs)
    enc = fields[1] if len(fields) > 1 else ""
    if fs + enc not in _GOOD_SEPARATORS and not _separators_ok(fs, enc):
        raise _fail(
            "bad_msh",
            "MSH-1/MSH-2 do not declare usable separators (expected e.g. '|^~\\&'): the MSH "
            "segment is truncated or damaged",
        )
    fields[0] = fs
    fields.insert(0, "MSH")
    charset = fields[18] if len(fields) > 18 else ""
    codec = _CODECS.get(charset)
    if codec is None:
        codec = codec_for(charset)
        if codec is not None and len(_CODECS) < 256:
            _CODECS[charset] = codec
    comp, rep = enc[0], enc[1]
    if codec is None:
        hdr = _header_from(fields, comp, rep, charset, "latin-1")
        raise _fail(
            "unsupported_charset",
            f"MSH-18 declares character set {charset.strip()!r}, which Vigil cannot read: ask the "
            "sender for UNICODE UTF-8 or 8859/1",
            hdr,
        )
    if not ascii_line and codec not in ("latin-1", "ascii"):
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


_CODECS: dict[str, str] = {}  # MSH-18 as sent -> codec (codec_for, memoised)
_PAD = [""] * 19


def _header_from(fields: list[str], comp: str, rep: str, charset: str, codec: str) -> MessageHeader:
    f = fields if len(fields) > 18 else fields + _PAD[len(fields) :]
    t = f[9].split(rep, 1)[0].split(comp)
    mtype = t[0].strip()
    if len(t) > 1:
        ev = t[1].strip()
        if ev:
            mtype += "^" + ev
    return tuple.__new__(
        MessageHeader,
        (
            _first(f[3], comp, rep).strip(),  # sending_application
            _first(f[4], comp, rep).strip(),  # sending_facility
            _first(f[5], comp, rep).strip(),  # receiving_application
            _first(f[6], comp, rep).strip(),  # receiving_facility
            f[7].strip(),  # timestamp
            mtype,  # message_type
            t[2].strip() if len(t) > 2 else "",  # structure
            f[10].strip(),  # control_id
            _first(f[11], comp, rep).strip(),  # processing_id
            _first(f[12], comp, rep).strip(),  # version
            charset.strip(),  # charset
            codec,  # codec
            f[1],  # field_sep
            f[2],  # encoding
        ),
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
    """A decoded message: its header and its segments in the order received.

    Segment lines are kept as strings (``lines``, ``names``, ``positions(name)``); a line is split
    into fields the first time one of its fields is read (``fields_at``), and Segment objects
    are only built when someone asks for ``segments``: the mapper works on positions.
    """

    __slots__ = (
        "_pos",
        "_segs",
        "cache",
        "comp",
        "enc",
        "esc",
        "fcache",
        "fs",
        "header",
        "lines",
        "names",
        "rep",
        "sub",
    )

    def __init__(self, header: MessageHeader, text: str) -> None:
        self.header = header
        self.fs = header.field_sep
        enc = self.enc = header.encoding
        self.comp = enc[0]
        self.rep = enc[1]
        self.esc = enc[2] if len(enc) > 2 else ""
        self.sub = enc[3] if len(enc) > 3 else "&"
        lines = text.split("\r")
        if "" in lines:
            lines = [line for line in lines if line]
        self.lines = lines
        self.names = [line[:3] for line in lines]
        self.fcache: list[list[str] | None] = [None] * len(lines)
        self._pos: dict[str, tuple[int, ...] | list[int]] = {}
        self._segs: list[Segment] | None = None
        self.cache: dict[object, object] = {}

    def positions(self, name: str) -> tuple[int, ...] | list[int]:
        """Positions of the segments named ``name``, in order (found on first use)."""
        p = self._pos.get(name)
        if p is None:
            names = self.names
            k = names.count(name)
            if k == 0:
                p = ()
            elif k == 1:
                p = (names.index(name),)
            else:
                p = []
                i = -1
                for _ in range(k):
                    i = names.index(name, i + 1)
                    p.append(i)
            self._pos[name] = p
        return p

    @property
    def index(self) -> dict[str, list[int]]:
        """Segment name -> positions, for every name in the message."""
        return {name: list(self.positions(name)) for name in dict.fromkeys(self.names)}

    # -- raw access ------------------------------------------------------------------------------

    @property
    def segments(self) -> list[Segment]:
        segs = self._segs
        if segs is None:
            segs = self._segs = [
                Segment(name, line, pos)
                for pos, (name, line) in enumerate(zip(self.names, self.lines, strict=True))
            ]
        return segs

    def fields_at(self, pos: int) -> list[str]:
        """Fields of the segment at ``pos`` (HL7 numbering), split once and cached."""
        f = self.fcache[pos]
        if f is None:
            f = self.lines[pos].split(self.fs)
            if self.names[pos] == "MSH":
                f.insert(1, self.fs)
            self.fcache[pos] = f
        return f

    def first(self, name: str) -> Segment | None:
        idx = self.positions(name)
        return self.segments[idx[0]] if idx else None

    def all(self, name: str) -> list[Segment]:
        segs = self.segments
        return [segs[i] for i in self.positions(name)]

    def raw_field(self, seg: Segment, n: int) -> str:
        f = seg.fields(self.fs)
        return f[n] if len(f) > n else ""

    def value(self, seg: Segment, field: int, comp: int = 0, sub: int = 0, rep: int = 1) -> str:
        """Field (or component/subcomponent, 1-based; 0 = whole) of one repetition, unescaped."""
        f = seg._fields
        if f is None:
            f = seg.fields(self.fs)
        return self._value(f, seg.name, field, comp, sub, rep)

    def value_at(self, pos: int, field: int, comp: int = 0, sub: int = 0, rep: int = 1) -> str:
        """``value`` of the segment at position ``pos``."""
        f = self.fcache[pos]
        if f is None:
            f = self.fields_at(pos)
        return self._value(f, self.names[pos], field, comp, sub, rep)

    def _value(self, f: list[str], name: str, field: int, comp: int, sub: int, rep: int) -> str:
        if len(f) <= field:
            return ""
        v = f[field]
        if not v:
            return ""
        if field <= 2 and name == "MSH":
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


def prepare(raw: bytes) -> tuple[bytes, MessageHeader]:
    """(normalised bytes, header): what ``read_header`` reads, kept for ``decode_prepared``."""
    data = normalise(raw).lstrip(b" \t\r\x0b")
    return data, _read_header(data)


def decode_message(raw: bytes, header: MessageHeader | None = None) -> Message:
    """Bytes of one message -> Message. Raises MessageRejected (no_msh, bad_msh, bad_encoding)."""
    data = normalise(raw).lstrip(b" \t\r\x0b")
    return decode_prepared(data, header or read_header(data))


def decode_prepared(data: bytes, hdr: MessageHeader) -> Message:
    """Normalised bytes (from ``prepare``) and their header -> Message."""
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
