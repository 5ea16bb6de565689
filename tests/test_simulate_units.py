"""Property tests of the simulator's building blocks: HL7 times, escaping, options, workers."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.errors import InvalidInputError
from vigil.simulate import SimulationConfig, simulate
from vigil.simulate.hl7_writer import escape, fmt_ts

TS = re.compile(r"^(\d{14})(?:\.(\d{1,4}))?([+-]\d{4})?$")


def parse_ts(text: str) -> datetime:
    """HL7 TS -> aware UTC, written here from the HL7 v2.5 definition (not the simulator's)."""
    m = TS.match(text)
    assert m, text
    dt = datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
    if m.group(3):
        z = m.group(3)
        dt -= timedelta(hours=int(z[1:3]), minutes=int(z[3:5])) * (1 if z[0] == "+" else -1)
    return dt.replace(tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(
    sec=st.integers(min_value=631152000, max_value=7258118400),  # 1990 .. 2200
    style=st.sampled_from([0, 1, 2]),
    salt=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_hl7_time_is_the_same_instant_in_every_style(sec: int, style: int, salt: int) -> None:
    text = fmt_ts(sec, style, salt)
    assert parse_ts(text) == datetime.fromtimestamp(sec, UTC)
    assert ("." in text) == (style == 2)
    assert (("+" in text) or ("-" in text)) == (style == 1)


def unescape(text: str) -> str:
    table = {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\"}
    return re.sub(r"\\([FSTRE])\\", lambda m: table[m.group(1)], text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab |^&~\\FSTRE.ü"), max_size=40))
def test_escape_hides_every_delimiter_and_round_trips(text: str) -> None:
    out = escape(text)
    assert not re.search(r"[|^&~]", out)
    assert unescape(out) == text


@settings(max_examples=60, deadline=None)
@given(
    studies=st.integers(min_value=-10, max_value=30_000_000),
    months=st.integers(min_value=-2, max_value=80),
    mess=st.one_of(st.floats(min_value=-1, max_value=2), st.just(float("nan"))),
)
def test_options_are_accepted_exactly_inside_their_ranges(
    studies: int, months: int, mess: float
) -> None:
    cfg = SimulationConfig(studies=studies, months=months, mess=mess)
    ok = 1 <= studies <= 20_000_000 and 1 <= months <= 60 and 0 <= mess <= 1
    if ok:
        assert cfg.validate() is cfg
    else:
        with pytest.raises(InvalidInputError):
            cfg.validate()


def test_worker_processes_do_not_change_the_bytes(tmp_path: Path) -> None:
    digests = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        simulate(SimulationConfig(studies=400, months=3, seed=9, out=out, workers=workers))
        digests.append(
            {
                str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*"))
                if p.is_file()
            }
        )
    assert digests[0] == digests[1]
