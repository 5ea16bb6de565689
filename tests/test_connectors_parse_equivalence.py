"""The mapper's compiled lookups against a plain reading of the location rules.

The hot path compiles each profile location list into generated code, finds order groups from
the ORC/OBR/IPC positions only, and pre-filters OBX(CODE) lines by substring. This test reads
the same locations the slow, obvious way (split every line, walk every segment, exactly as the
README states the rules) and requires the same value for every location list of every shipped
profile, in every order group, on real samples, simulator messages and random messages.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.errors import MessageRejected
from connectors.framing import split_messages
from connectors.hl7text import unescape
from connectors.mapper import GROUP_SEGMENTS, Mapper, compile_getter, compile_locs
from connectors.parse import Message, decode_message
from connectors.pipeline import Pipeline
from connectors.profile import Loc, parse_loc
from vigil.settings import load_settings

sys.path.insert(0, str(Path(__file__).parent))
from connectors_feedgen import generate

PIPE = Pipeline(load_settings(demo=True))
MAPPERS: list[Mapper] = list(PIPE._mappers.values())


# -- the reference: every rule written out on plain lists --------------------------------------


@lru_cache(maxsize=4096)
def _fields(line: str, fs: str) -> tuple[str, ...]:
    f = line.split(fs)
    if line[:3] == "MSH":
        f.insert(1, fs)
    return tuple(f)


def ref_value(msg: Message, line: str, field: int, comp: int, sub: int) -> str:
    """Field ``field`` (its ``comp``/``sub``, 1-based) of the first repetition, unescaped."""
    f = _fields(line, msg.fs)
    v = f[field] if field < len(f) else ""
    if line[:3] == "MSH" and field <= 2:
        return v
    v = v.split(msg.rep)[0]
    parts = v.split(msg.comp)
    v = parts[(comp or 1) - 1] if len(parts) >= (comp or 1) else ""
    if sub:
        subs = v.split(msg.sub)
        v = subs[sub - 1] if len(subs) >= sub else ""
    return unescape(v, msg.enc, msg.header.codec) if msg.esc else v


def ref_groups(lines: list[str]) -> list[tuple[int, int]]:
    """Each group starts at an ORC, or at an OBR that follows another OBR (or an IPC first)."""
    starts: list[int] = []
    has_obr = False
    for i, line in enumerate(lines):
        name = line[:3]
        if name == "ORC":
            starts.append(i)
            has_obr = False
        elif name == "OBR":
            if not starts or has_obr:
                starts.append(i)
            has_obr = True
        elif name == "IPC" and not starts:
            starts.append(i)
    return [(s, starts[k + 1] if k + 1 < len(starts) else len(lines)) for k, s in enumerate(starts)]


def ref_get(msg: Message, locs: tuple[Loc, ...], scope: tuple[int, int] | None) -> str:
    """First non-empty (and not '""') value among ``locs``."""
    for loc in locs:
        for i, line in enumerate(msg.lines):
            if line[:3] != loc.seg:
                continue
            if loc.code is not None and ref_value(msg, line, 3, 1, 0) != loc.code:
                continue
            if scope is not None and loc.seg in GROUP_SEGMENTS and not scope[0] <= i < scope[1]:
                continue
            v = ref_value(msg, line, loc.field, loc.comp, loc.sub).strip()
            if v and v != '""':
                return v
            break  # only the first segment a location names is read
    return ""


# -- what is compared ----------------------------------------------------------------------------


def _profile_locs(m: Mapper) -> list[tuple[Loc, ...]]:
    d = m.p.data
    out = [d["site"]["code"]]
    out += [d["patient"][k] for k in ("id", "prior_id", "birth_date", "sex", "race", "ethnicity")]
    out += [v for k, v in d["study"].items() if isinstance(v, tuple) and v]
    out += list(d["study"]["extra"].values())
    for spec in m.p.models:
        out += [spec.score, spec.call, spec.version]
    if m.p.has_ai:
        out.append(d["ai"]["received_at"])
    if m.p.has_report:
        out += [v for v in d["report"].values() if isinstance(v, tuple) and v]
        out += [f.coded for f in m.p.findings if f.coded]
    return [locs for locs in out if locs]


def _check(raw: bytes) -> int:
    try:
        msg = decode_message(raw)
    except MessageRejected:
        return 0
    n = 0
    for mapper in MAPPERS:
        assert mapper.groups(msg) == ref_groups(msg.lines)
        for locs in _profile_locs(mapper):
            compiled = compile_getter(compile_locs(locs), mapper._position)
            for scope in [None, *mapper.groups(msg)]:
                want = ref_get(msg, locs, scope)
                assert compiled(msg, scope)[0] == want, (mapper.p.name, locs, scope)
                assert mapper.get(msg, locs, scope)[0] == want, (mapper.p.name, locs, scope)
                n += 1
    return n


def test_real_samples(samples_dir: Path) -> None:
    n = 0
    for path in sorted(samples_dir.glob("*.hl7")):
        for raw in split_messages(path.read_bytes()):
            n += _check(raw)
    assert n > 1000


def test_simulated_messages() -> None:
    from vigil.simulate import SimulationConfig, iter_messages

    n = 0
    msgs = 0
    for _sender, raw in iter_messages(SimulationConfig(studies=25, months=1, seed=3, mess=0.3)):
        for one in split_messages(raw):
            n += _check(one)
            msgs += 1
    assert msgs > 60 and n > 4_000


def test_feed_contract_messages() -> None:
    n = sum(_check(m) for s in generate(60, seed=8, mess=0.5) for m in split_messages(s.raw))
    assert n > 5_000


# -- random messages and random locations ----------------------------------------------------------

_NAMES = ["PID", "PV1", "ORC", "OBR", "OBX", "IPC", "ZDS", "NTE", "MRG"]
_TEXT = st.sampled_from(["", "a", "X1", "ICH", "113014", '""', " ", "\\F\\", "\\S\\x", "\\"])
_VALUE = st.lists(
    st.tuples(_TEXT, st.sampled_from(["", "^", "&", "~", "^^", "~~"])), max_size=4
).map(lambda parts: "".join(a + b for a, b in parts))
_SEGMENT = st.tuples(st.sampled_from(_NAMES), st.lists(_VALUE, max_size=7)).map(
    lambda t: "|".join([t[0], *t[1]])
)
_LOC = st.builds(
    lambda seg, code, field, comp, sub: parse_loc(
        seg
        + (f"({code})" if code else "")
        + f"-{field}"
        + (f".{comp}" if comp else "")
        + (f".{sub}" if comp and sub else "")
    ),
    st.sampled_from([*_NAMES, "MSH"]),
    st.sampled_from([None, None, "ICH", "113014", "X1", "a"]),
    st.integers(1, 8),
    st.integers(0, 3),
    st.integers(0, 2),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_SEGMENT, max_size=10), st.lists(_LOC, min_size=1, max_size=3))
def test_random_messages_and_locations(segments: list[str], locs: list[Loc]) -> None:
    raw = "\r".join(["MSH|^~\\&|APP|FAC|||20240101||ORU^R01|1|P|2.5", *segments]) + "\r"
    msg = decode_message(raw.encode())
    mapper = MAPPERS[0]
    assert mapper.groups(msg) == ref_groups(msg.lines)
    compiled = compile_getter(compile_locs(tuple(locs)), mapper._position)
    for scope in [None, *ref_groups(msg.lines)]:
        want = ref_get(msg, tuple(locs), scope)
        assert compiled(msg, scope)[0] == want
        assert mapper.get(msg, tuple(locs), scope)[0] == want


@pytest.mark.parametrize(
    ("line", "want"),
    [("OBX|1|ST|IC\\E\\H||v", ""), ("OBX|1|ST|ICH~X||v", "v"), ("OBX|1|ST|I\\X43\\H||v", "v")],
)
def test_coded_prefilter_sees_escaped_codes(line: str, want: str) -> None:
    """OBX(CODE) must find a code written with escapes (I\\X43\\H is ICH), which no substring
    test on the raw line would."""
    raw = f"MSH|^~\\&|A|B|||20240101||ORU^R01|1|P|2.5\rOBR|1\r{line}\r".encode()
    locs = (Loc("OBX", "ICH", 5),)
    for mapper in MAPPERS:
        msg = decode_message(raw)
        assert ref_get(msg, locs, None) == want
        assert mapper.get(msg, locs)[0] == want
