"""Differential test: Vigil's fast splitter reads exactly what hl7apy reads, field by field.

hl7apy is the reference for HL7 structure (segments, fields, repetitions, components). It never
unescapes, so raw fields are compared as they are, and unescaped values are compared after
passing hl7apy's raw component through Vigil's unescape. Run on every real sample hl7apy can
parse and on 1,000 messages of the simulator (vigil.simulate; messages written from the feed
contract when it is absent). hl7apy parses ~45 messages per second: this is the slow part.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from connectors.errors import MessageRejected
from connectors.framing import split_messages
from connectors.hl7text import unescape
from connectors.parse import Message, decode_message

sys.path.insert(0, str(Path(__file__).parent))
from connectors_feedgen import generate

# the places mapping profiles read (field, component, subcomponent)
PATHS = {
    "MSH": [
        (3, 1, 0),
        (4, 1, 0),
        (7, 0, 0),
        (9, 1, 0),
        (9, 2, 0),
        (10, 0, 0),
        (12, 1, 0),
        (18, 0, 0),
    ],
    "PID": [(3, 1, 0), (3, 4, 1), (3, 5, 0), (7, 1, 0), (8, 1, 0), (10, 1, 0), (22, 1, 0)],
    "PV1": [(2, 1, 0)],
    "ORC": [(1, 1, 0), (3, 1, 0), (9, 1, 0)],
    "OBR": [
        (3, 1, 0),
        (4, 1, 0),
        (4, 2, 0),
        (7, 1, 0),
        (18, 1, 0),
        (22, 1, 0),
        (24, 1, 0),
        (25, 1, 0),
        (32, 1, 1),
        (32, 2, 0),
        (32, 3, 0),
    ],
    "OBX": [(2, 1, 0), (3, 1, 0), (5, 1, 0), (9, 1, 0), (18, 2, 0)],
    "IPC": [(1, 1, 0), (3, 1, 0), (5, 1, 0)],
    "ZDS": [(1, 1, 0)],
    "ZSC": [(1, 1, 0), (2, 1, 0)],
    "SFT": [(2, 1, 0)],
    "MRG": [(1, 1, 0), (1, 4, 1)],
}


_FT_ESCAPED = re.compile(r"\\E\\(\.[a-z]{2}[+-]?\d*)\\E\\")


def _er7(node) -> str:
    """hl7apy's text for a node; hl7apy escapes the escape char of FT formatting commands
    (\\.br\\ becomes \\E\\.br\\E\\) when writing, so that is undone here."""
    return _FT_ESCAPED.sub(r"\\\1\\", node.to_er7())


def _apy_fields(seg) -> tuple[dict[int, str], list[str]]:
    """(field number -> raw value with repetitions joined by ~, values of unnamed fields).

    hl7apy names the fields its tables define for the version (PID_3); others (withdrawn, or
    past the table's end) come back unnamed, in order, with empty ones dropped.
    """
    out: dict[int, list[str]] = {}
    unnamed: list[str] = []
    for child in seg.children:
        if child.name is None:
            unnamed.append(_er7(child))
            continue
        m = re.search(r"_(\d+)$", child.name)
        assert m, child.name
        out.setdefault(int(m.group(1)), []).append(_er7(child))
    return {k: "~".join(v) for k, v in out.items()}, unnamed


def _canon(value: str, m: Message) -> str:
    """Trailing empty components/subcomponents removed (hl7apy writes none; same meaning)."""
    reps = []
    for rep in value.split(m.rep):
        comps = [c.rstrip(m.sub) for c in rep.split(m.comp)]
        reps.append(m.comp.join(comps).rstrip(m.comp))
    return m.rep.join(reps)


def _parts(value: str, m: Message) -> list[list[str]]:
    """Components of each repetition, sorted; numbers as numbers (hl7apy writes 001 as 1)."""

    def norm(c: str) -> str:
        try:
            return repr(float(c))
        except ValueError:
            return c

    return [sorted(norm(c) for c in rep.split(m.comp) if c) for rep in value.split(m.rep)]


def _compare(raw: bytes) -> int:
    """Compare one message; returns the number of fields compared."""
    ours: Message = decode_message(raw)
    text = raw.decode(ours.header.codec).replace("\r\n", "\r").lstrip("\ufeff")
    apy = parse_message(
        text.rstrip("\r"), find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT
    )
    segs = list(apy.children)
    assert [s.name for s in segs] == [s.name for s in ours.segments], "segment order differs"
    n = 0
    for apy_seg, seg in zip(segs, ours.segments, strict=True):
        expected, unnamed = _apy_fields(apy_seg)
        fields = seg.fields(ours.fs)
        # hl7apy drops fields that hold only spaces; so does the comparison
        got = {i: f for i, f in enumerate(fields) if i > 0 and f.strip()}
        expected = {i: f for i, f in expected.items() if f.strip()}
        if got:  # hl7apy strips trailing spaces from a segment's last field
            last = max(got)
            got[last] = got[last].rstrip()
        if unnamed:
            # fields hl7apy's table lacks for this version (withdrawn, or past its end) come back
            # unnamed: they must be exactly our remaining fields, in order
            rest = [f for i, f in sorted(got.items()) if i not in expected]
            assert rest == [u for u in unnamed if u.strip()], f"{seg.name}: unnamed fields"
            got = {i: f for i, f in got.items() if i in expected}
        if seg.name == "MSH":
            got = {i: f for i, f in got.items() if i > 1}
            expected = {i: f for i, f in expected.items() if i > 1}
        else:
            got = {i: _canon(f, ours) for i, f in got.items()}
            expected = {i: _canon(f, ours) for i, f in expected.items()}
            got = {i: f for i, f in got.items() if f}
            expected = {i: f for i, f in expected.items() if f}
        for i in set(got) | set(expected):
            a, b = got.get(i, ""), expected.get(i, "")
            if a != b and seg.name != "MSH":
                # hl7apy moves a withdrawn first component (XTN.1 from 2.6 on) to the end of
                # the field: then compare the components of each repetition regardless of order
                a, b = _parts(a, ours), _parts(b, ours)
            assert a == b, f"{seg.name}-{i} differs"
        n += len(got)
        for fld, comp, sub in PATHS.get(seg.name, ()):
            want = _apy_component(apy_seg, seg.name, fld, comp, sub, ours)
            # the mapper strips surrounding spaces from every value it reads
            got_v = ours.value(seg, fld, comp, sub).strip()
            assert got_v == want.strip(), f"{seg.name}-{fld}.{comp}.{sub}"
            n += 1
    return n


def _numbered(node) -> dict[int, object] | None:
    """Children by their number (XCN_2 -> 2); None for a leaf (no numbered children)."""
    out = {}
    for c in node.children:
        m = re.search(r"_(\d+)$", c.name)
        if m is None:
            return None
        out[int(m.group(1))] = c
    return out or None


def _apy_component(apy_seg, name: str, fld: int, comp: int, sub: int, ours: Message) -> str:
    """hl7apy's value at SEG-fld.comp.sub (first repetition), unescaped by Vigil's rules."""
    reps = [c for c in apy_seg.children if c.name == f"{name}_{fld}"]
    if not reps:
        return ""
    node = reps[0]
    if name == "MSH" and fld <= 2:
        return node.to_er7()
    leaf_text = None
    for level, sep in ((comp, ours.comp), (sub, ours.sub)):
        if not level:
            break
        children = _numbered(node) if leaf_text is None else None
        if children is None:
            # a leaf (primitive type, or an unknown Z field): HL7 says a receiver ignores extra
            # components in a primitive field, so its value is the text before the separator
            if level != 1:
                return ""
            text = _er7(node) if leaf_text is None else leaf_text
            leaf_text = text.split(sep, 1)[0]
            continue
        node = children.get(level)
        if node is None:
            return ""
    raw = _er7(node) if leaf_text is None else leaf_text
    return unescape(raw, ours.enc, ours.header.codec)


def _sample_messages(samples_dir: Path) -> list[tuple[str, bytes]]:
    out = []
    for path in sorted(samples_dir.glob("*.hl7")):
        for i, msg in enumerate(split_messages(path.read_bytes())):
            if msg.startswith(b"MSH"):
                out.append((f"{path.name}#{i}", msg))
    return out


def test_real_samples_field_by_field(samples_dir: Path) -> None:
    compared, skipped = 0, []
    for name, msg in _sample_messages(samples_dir):
        try:
            parse_message(
                msg.decode("latin-1").rstrip("\r"),
                find_groups=False,
                validation_level=VALIDATION_LEVEL.TOLERANT,
            )
        except Exception:  # hl7apy cannot parse it: nothing to compare against
            skipped.append(name)
            continue
        compared += 1
        assert _compare(msg) > 5, name
    # hl7apy parses most real samples; if it suddenly parsed none the test would prove nothing
    assert compared >= 28, (compared, skipped)


def _simulated(n: int) -> list[bytes]:
    """n messages from the simulator's API (vigil.simulate), else from the feed contract."""
    try:
        from vigil.simulate import SimulationConfig, iter_messages
    except ImportError:
        return [next(split_messages(s.raw)) for s in generate(n, seed=2026, mess=0.3)]
    out: list[bytes] = []
    for _sender, raw in iter_messages(SimulationConfig(studies=n, months=1, seed=2026, mess=0.3)):
        msg = next(split_messages(raw), b"")
        if msg.startswith(b"MSH"):
            try:
                decode_message(msg)
            except MessageRejected:  # the simulator's deliberately malformed messages
                continue
            out.append(msg)
        if len(out) == n:
            break
    return out


@pytest.mark.slow
def test_simulated_messages_field_by_field() -> None:
    msgs = _simulated(1000)
    assert len(msgs) == 1000
    n = sum(_compare(m) for m in msgs)
    assert n > 20_000
