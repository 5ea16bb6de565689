"""One file's bytes -> single HL7 messages with CR segment ends.

Files from interface engines and public samples mix CR, LF and CRLF, start with a UTF-8 BOM,
wrap messages in FHS/BHS...BTS/FTS batch envelopes, or keep stray MLLP frame bytes. Nothing is
dropped silently: segments that precede the first MSH (other than envelopes) come out as their
own chunk, which :meth:`connectors.pipeline.Pipeline.handle` then rejects with ``no_msh``.
"""

from __future__ import annotations

from collections.abc import Iterator

BOM = b"\xef\xbb\xbf"
ENVELOPE = (b"FHS", b"BHS", b"BTS", b"FTS")
_STRIP = b" \t\x0b\x1c\x00"


def normalise(data: bytes) -> bytes:
    """CRLF and LF -> CR; a leading BOM removed. Cheap when the data is already clean."""
    data = data.removeprefix(BOM)
    if b"\n" in data:
        data = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    return data


_LF_TO_CR = bytes.maketrans(b"\n", b"\r")


def split_messages(data: bytes) -> Iterator[bytes]:
    """Yield each message in ``data`` as bytes, segments ended by CR (the last one too)."""
    # LF -> CR in one pass (a third of normalise's two replaces): a CRLF becomes CR CR, and
    # the blank segment between them is skipped below like any other, so the messages are the
    # same (a property test compares with normalise).
    data = data.removeprefix(BOM)
    if b"\n" in data:
        data = data.translate(_LF_TO_CR)
    current: list[bytes] = []
    for line in data.split(b"\r"):
        seg = line.lstrip(_STRIP)
        if seg.startswith(BOM):  # a BOM in front of a later message of a concatenated file
            seg = seg[3:]
        if not seg.strip(_STRIP):
            continue
        head = seg[:3]
        if head in ENVELOPE and (len(seg) == 3 or not seg[3:4].isalnum()):
            if current:  # an envelope closes whatever message precedes it
                yield b"\r".join(current) + b"\r"
                current = []
            continue
        if head == b"MSH" and current:
            yield b"\r".join(current) + b"\r"
            current = []
        current.append(seg.rstrip(b"\x1c\x00"))
    if current:
        yield b"\r".join(current) + b"\r"
