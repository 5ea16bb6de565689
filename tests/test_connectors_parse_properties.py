"""Random and mutated bytes never crash the parser: only MessageRejected, or a result."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connectors.errors import REASON_CODES, MessageRejected
from connectors.events import MappedMessage
from connectors.framing import normalise, split_messages
from connectors.pipeline import Pipeline
from vigil.settings import load_settings

sys.path.insert(0, str(Path(__file__).parent))
from connectors_feedgen import generate

PIPE = Pipeline(load_settings(demo=True))
SEEDS = [s.raw for s in generate(40, seed=11, mess=0.5)]


def _handle_all(data: bytes) -> None:
    for msg in split_messages(data):
        assert msg.endswith(b"\r")
        try:
            out = PIPE.handle(msg)
        except MessageRejected as exc:
            assert exc.reason_code in REASON_CODES
            assert exc.reason
            continue
        assert isinstance(out, MappedMessage) and out.outcome in ("mapped", "ignored")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    _handle_all(data)
    _handle_all(b"MSH|^~\\&|" + data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SEEDS),
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3000),
            st.sampled_from(
                [
                    b"",
                    b"|",
                    b"^",
                    b"\\",
                    b"&",
                    b"~",
                    b"\r",
                    b"\n",
                    b"\xff",
                    b"\x00",
                    b"\\X",
                    b"\\F\\",
                    b"OBX|",
                    b"MSH|",
                    b"9",
                    b"A",
                    b"\xc3",
                ]
            ),
            st.integers(min_value=0, max_value=5),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_messages(seed: bytes, edits: list[tuple[int, bytes, int]]) -> None:
    data = bytearray(seed)
    for pos, insert, delete in edits:
        p = pos % (len(data) + 1)
        data[p : p + delete] = insert
    _handle_all(bytes(data))


def test_mutation_seeds_map_cleanly() -> None:
    # the property tests above start from messages that are valid, so mutations explore near them
    for raw in SEEDS:
        assert PIPE.handle(raw).outcome == "mapped"


@pytest.mark.parametrize("size", [2_000_000])
def test_too_large(size: int) -> None:
    with pytest.raises(MessageRejected) as info:
        PIPE.handle(SEEDS[0] + b"NTE|1||" + b"x" * size + b"\r")
    assert info.value.reason_code == "too_large" and info.value.control_id


_SEGMENTS = [
    b"MSH|^~\\&|RIS|NGH|VIGIL|X|20260301||ORU^R01|1|P|2.5",
    b"MSH|^~\\&|AI|NGH",
    b"MSH",
    b"MSHX|",
    b"PID|1||123",
    b"OBX|1|TX|||text ",
    b"",
    b"FHS|^~\\&",
    b"BHS",
    b"BTS|1",
    b"FTS",
    b"FHSX",
]
# mostly plain lines, so that a file with just one odd byte somewhere is common
_PREFIXES = [b""] * 30 + [b" ", b"\t", b"\x0b", b"\x00", b"\x1c", b"\xef\xbb\xbf", b"\xef\xbb\xbf "]
_ENDS = [b"\r"] * 20 + [b"\n", b"\r\n", b"\x1c\r", b"\x00\r", b"\r\r", b"\r \r", b""]
_LINE = st.tuples(st.sampled_from(_PREFIXES), st.sampled_from(_SEGMENTS), st.sampled_from(_ENDS))


@settings(max_examples=600, deadline=None)
@given(st.lists(_LINE, max_size=25))
@example([(b"\xef\xbb\xbf ", b"MSH|^~\\&|AI|NGH", b"\r\n"), (b"", b"PID|1||123", b"\n")])
def test_split_equals_the_walk_over_normalised_bytes(
    lines: list[tuple[bytes, bytes, bytes]],
) -> None:
    """split_messages turns LF into CR in one pass and lets the walk drop the blank segment a
    CRLF leaves: the messages equal those of the walk over fully normalised bytes."""
    data = b"".join(a + b + c for a, b, c in lines)
    assert list(split_messages(data)) == list(_reference_split(normalise(data)))


def _reference_split(data: bytes) -> list[bytes]:
    """The walk of split_messages over already normalised bytes (no LF left to translate)."""
    assert b"\n" not in data
    return list(split_messages(data))
