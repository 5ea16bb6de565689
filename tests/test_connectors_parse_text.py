"""Framing, escape sequences, character sets and timestamps: rules every field passes through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.errors import MessageRejected
from connectors.framing import split_messages
from connectors.hl7text import BadTimestamp, escape, parse_ts, site_zone, unescape
from connectors.parse import decode_message, read_header

MSH = "MSH|^~\\&|RADIS|NGH|VIGIL|CoE|20260301120000||ORU^R01|C{n}|P|2.5"


def _msg(n: int, body: str = "PID|1||42^^^NGH^MR") -> str:
    return MSH.format(n=n) + "\r" + body + "\r"


# -- framing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_split_any_line_end_and_bom(sep: str) -> None:
    data = ("\ufeff" + _msg(1) + _msg(2) + "\n\n" + _msg(3)).replace("\r", sep).encode()
    out = list(split_messages(data))
    assert [m.split(b"|")[9] for m in out] == [b"C1", b"C2", b"C3"]
    assert all(m.endswith(b"\r") and b"\n" not in m for m in out)
    assert out[0].startswith(b"MSH|")


def test_split_batches_and_orphans() -> None:
    data = (
        "FHS|^~\\&|X\rBHS|^~\\&|X\r"
        + _msg(1)
        + _msg(2)
        + "BTS|2\rBHS|^~\\&|Y\r"
        + _msg(3)
        + "BTS|1\rFTS|2\r"
    ).encode()
    assert [m.split(b"|")[9] for m in split_messages(data)] == [b"C1", b"C2", b"C3"]
    # segments before any MSH are not dropped: they come out as a chunk that is rejected
    orphans = list(split_messages(b"BHS|^~\\&\rEVN|A04\rPID|1\rBTS|1\r" + _msg(9).encode()))
    assert orphans[0] == b"EVN|A04\rPID|1\r"
    with pytest.raises(MessageRejected) as info:
        read_header(orphans[0])
    assert info.value.reason_code == "no_msh"


def test_z_and_unknown_segments_keep_their_place() -> None:
    msg = decode_message(_msg(1, "PID|1\rZXX|a\rOBR|1\rABC|b\rOBX|1|TX\rZDS|1.2.3").encode())
    assert [s.name for s in msg.segments] == ["MSH", "PID", "ZXX", "OBR", "ABC", "OBX", "ZDS"]


# -- escapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("a\\F\\b", "a|b"),
        ("a\\S\\b\\T\\c\\R\\d\\E\\e", "a^b&c~d\\e"),
        ("line1\\.br\\line2", "line1\nline2"),
        ("caf\\XC3A9\\", "café"),
        ("\\H\\bold\\N\\", "bold"),
        ("unknown \\Q\\ kept", "unknown \\Q\\ kept"),
        ("unterminated \\F", "unterminated \\F"),
    ],
)
def test_unescape(raw: str, text: str) -> None:
    assert unescape(raw) == text


def test_hex_escape_uses_the_declared_charset() -> None:
    assert unescape("caf\\XE9\\", codec="latin-1") == "café"
    # in a UTF-8 message a lone E9 byte is not UTF-8: kept as the Latin-1 character, not lost
    assert unescape("caf\\XE9\\", codec="utf-8") == "café"


def test_custom_escape_character() -> None:
    assert unescape("a#F#b", enc="^~#&") == "a|b"
    assert unescape("a\\F\\b", enc="^~#&") == "a\\F\\b"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_escape_round_trip(text: str) -> None:
    esc = escape(text)
    assert not any(c in esc for c in "|^~&\r\n")
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert unescape(esc) == expected


# -- character sets -----------------------------------------------------------------------------


def test_msh18_latin1_and_utf8() -> None:
    latin = (MSH.format(n=1) + "||||||8859/1\rPID|1||1^^^A||Mu\u00f1oz").encode("latin-1")
    msg = decode_message(latin)
    assert msg.value(msg.segments[1], 5) == "Mu\u00f1oz"
    utf = (MSH.format(n=1) + "||||||UNICODE UTF-8\rPID|1||1^^^A||Mu\u00f1oz").encode()
    assert decode_message(utf).value(decode_message(utf).segments[1], 5) == "Mu\u00f1oz"


def test_bad_bytes_and_unknown_charset_are_rejected() -> None:
    with pytest.raises(MessageRejected) as info:
        decode_message((MSH.format(n=1) + "\rPID|1||\xff\xfe").encode("latin-1"))
    assert info.value.reason_code == "bad_encoding" and "offset" in info.value.reason
    with pytest.raises(MessageRejected) as info:
        read_header((MSH.format(n=1) + "||||||EBCDIC\r").encode())
    assert info.value.reason_code == "unsupported_charset"


@pytest.mark.parametrize("raw", [b"MSH|", b"MSH|^~\\&|A|B", b"MSHX^~\\&|A", b"MSH|abcd|x"])
def test_truncated_msh(raw: bytes) -> None:
    with pytest.raises(MessageRejected) as info:
        read_header(raw)
    assert info.value.reason_code == "bad_msh"


# -- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("20260301123456", datetime(2026, 3, 1, 12, 34, 56, tzinfo=UTC)),
        ("202603011234", datetime(2026, 3, 1, 12, 34, tzinfo=UTC)),
        ("20260301", datetime(2026, 3, 1, tzinfo=UTC)),
        ("20260301123456+0100", datetime(2026, 3, 1, 11, 34, 56, tzinfo=UTC)),
        ("20260301123456-0215", datetime(2026, 3, 1, 14, 49, 56, tzinfo=UTC)),
        ("20260301123456.1234", datetime(2026, 3, 1, 12, 34, 56, 123400, tzinfo=UTC)),
        ("20260301123456.5+0000", datetime(2026, 3, 1, 12, 34, 56, 500000, tzinfo=UTC)),
        ("2026-03-01T12:34:56+01:00", datetime(2026, 3, 1, 11, 34, 56, tzinfo=UTC)),
        ("20260301T123456Z", datetime(2026, 3, 1, 12, 34, 56, tzinfo=UTC)),
        ("20260301123456^S", datetime(2026, 3, 1, 12, 34, 56, tzinfo=UTC)),
        ("", None),
    ],
)
def test_parse_ts(raw: str, expected: datetime | None) -> None:
    got = parse_ts(raw)
    assert got == expected
    if got is not None:
        assert got.utcoffset() == timedelta(0)


def test_time_without_offset_is_site_local() -> None:
    # 12:00 in London in summer is 11:00 UTC; in winter 12:00 UTC
    london = site_zone("Europe/London")
    assert parse_ts("20260701120000", london) == datetime(2026, 7, 1, 11, tzinfo=UTC)
    assert parse_ts("20260101120000", london) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    # an explicit offset wins over the site zone
    ny = site_zone("America/New_York")
    got = parse_ts("20260701120000+0200", ny)
    assert got == datetime(2026, 7, 1, 12, tzinfo=timezone(timedelta(hours=2)))


@pytest.mark.parametrize("raw", ["2026130112", "notadate", "20260230", "20260301+2500", "2026-3"])
def test_bad_timestamps(raw: str) -> None:
    with pytest.raises(BadTimestamp):
        parse_ts(raw)
