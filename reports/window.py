"""The pack's data window: a calendar month in UTC, parsed from ``--period YYYY-MM``.

One object names the window everywhere (cover, footer, export command) so that every number in
the pack can be traced to exactly the cases ``vigil export cases --since --until`` returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from vigil.errors import InvalidInputError

_PERIOD = re.compile(r"^([0-9]{4})-([0-9]{2})$")


@dataclass(frozen=True, slots=True)
class Window:
    """Half-open UTC interval [start, end): the cases whose exam time falls inside it."""

    period: str  # "2026-10"
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        """'October 2026'."""
        return self.start.strftime("%B %Y")

    def iso(self) -> tuple[str, str]:
        """Start and end as ISO dates, as `vigil export cases --since --until` takes them."""
        return self.start.date().isoformat(), self.end.date().isoformat()


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def add_months(start: datetime, months: int) -> datetime:
    """The first of the month ``months`` after (or before, when negative) ``start``'s month."""
    index = start.year * 12 + (start.month - 1) + months
    return _month_start(index // 12, index % 12 + 1)


def parse_period(period: str) -> Window:
    """'2026-10' -> the window of October 2026. Anything else raises InvalidInputError."""
    m = _PERIOD.match(period.strip()) if isinstance(period, str) else None
    if not m:
        raise InvalidInputError(
            f"--period must be a calendar month written YYYY-MM (for example 2026-10); "
            f"got {period!r}"
        )
    year, month = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12:
        raise InvalidInputError(
            f"--period {period!r}: month must be 01 to 12 (for example 2026-10)"
        )
    if year < 1970:
        raise InvalidInputError(f"--period {period!r}: year must be 1970 or later")
    start = _month_start(year, month)
    return Window(period=f"{year:04d}-{month:02d}", start=start, end=add_months(start, 1))
