"""Random and mutated bytes never crash the parser: only MessageRejected, or a result."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.errors import REASON_CODES, MessageRejected
from connectors.events import MappedMessage
from connectors.framing import split_messages
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
