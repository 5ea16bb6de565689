"""A small MLLP sender: streams HL7 messages to a listener and collects the ACK codes.

Used by ``vigil simulate --mllp`` to feed a running ``vigil listen`` the way an interface
engine would. Messages are pipelined (up to ``window`` unacknowledged on the wire) so loopback
streaming is not bound by one round trip per message.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Iterable

from vigil.errors import VigilError

START, END = b"\x0b", b"\x1c\x0d"


class MLLPSendError(VigilError):
    """The listener could not be reached or closed the connection mid-stream."""


def _ack_code(ack: bytes) -> str:
    for seg in ack.replace(b"\n", b"\r").split(b"\r"):
        if seg.startswith(b"MSA"):
            sep = seg[3:4] or b"|"
            parts = seg.split(sep)
            return parts[1].decode("ascii", "replace") if len(parts) > 1 else "?"
    return "?"


def parse_address(address: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port), with a clear error for anything else."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MLLPSendError(f"--mllp {address!r}: give HOST:PORT, e.g. 127.0.0.1:2575")
    return host, int(port)


def send_messages(
    host: str,
    port: int,
    messages: Iterable[bytes],
    *,
    window: int = 64,
    timeout: float = 60.0,
    on_ack: Callable[[int], None] | None = None,
) -> Counter[str]:
    """Send every message, wait for every ACK; returns a count per MSA-1 code (AA/AE/AR/...)."""
    codes: Counter[str] = Counter()
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise MLLPSendError(f"cannot connect to MLLP listener {host}:{port}: {exc}") from exc
    buf = bytearray()
    outstanding = 0

    def read_one() -> None:
        nonlocal outstanding
        while END not in buf:
            data = sock.recv(65536)
            if not data:
                raise MLLPSendError(
                    f"listener {host}:{port} closed the connection with {outstanding} "
                    "message(s) unacknowledged"
                )
            buf.extend(data)
        i = buf.index(END)
        codes[_ack_code(bytes(buf[1:i]))] += 1
        del buf[: i + 2]
        outstanding -= 1
        if on_ack:
            on_ack(1)

    with sock:
        try:
            for raw in messages:
                sock.sendall(START + raw + END)
                outstanding += 1
                while outstanding >= window:
                    read_one()
            while outstanding:
                read_one()
        except OSError as exc:
            raise MLLPSendError(f"MLLP connection to {host}:{port} failed: {exc}") from exc
    return codes
