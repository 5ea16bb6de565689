"""What one simulation run is asked to do, checked before any work starts."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from vigil.errors import InvalidInputError

DEFAULT_START = date(2025, 11, 1)  # fixed, never "today": same seed, same bytes, any day
MAX_STUDIES = 20_000_000
MAX_MONTHS = 60


@dataclass(frozen=True)
class SimulationConfig:
    """Options of ``vigil simulate``; ``validate()`` raises InvalidInputError naming the fix."""

    studies: int = 20_000
    months: int = 12
    seed: int = 0
    start: date = DEFAULT_START
    stable: bool = False
    mess: float = 0.05
    out: Path | None = None
    force: bool = False
    workers: int | None = None  # None: up to 2 processes for big runs, 1 for small ones

    def validate(self) -> SimulationConfig:
        if isinstance(self.studies, bool) or not isinstance(self.studies, int):
            raise InvalidInputError("--studies must be a whole number, e.g. --studies 20000")
        if self.studies < 1:
            raise InvalidInputError(f"--studies must be at least 1 (got {self.studies})")
        if self.studies > MAX_STUDIES:
            raise InvalidInputError(f"--studies must be at most {MAX_STUDIES:,}")
        if not 1 <= self.months <= MAX_MONTHS:
            raise InvalidInputError(
                f"--months must be between 1 and {MAX_MONTHS} (got {self.months})"
            )
        if not 0 <= self.seed < 2**63:
            raise InvalidInputError(f"--seed must be between 0 and 2**63-1 (got {self.seed})")
        if not (0.0 <= self.mess <= 1.0):  # also refuses NaN
            raise InvalidInputError(f"--mess must be a share between 0 and 1 (got {self.mess})")
        if not 1990 <= self.start.year <= 2200:
            raise InvalidInputError(f"--start {self.start} is out of range (1990-2200)")
        if self.workers is not None and not 1 <= self.workers <= 64:
            raise InvalidInputError(f"workers must be between 1 and 64 (got {self.workers})")
        return self

    @property
    def start_dt(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def end_dt(self) -> datetime:
        """Start plus ``months`` calendar months (day clamped to the month's length)."""
        y, m = divmod(self.start.month - 1 + self.months, 12)
        year, month = self.start.year + y, m + 1
        day = min(self.start.day, calendar.monthrange(year, month)[1])
        return datetime(year, month, day, tzinfo=UTC)


def parse_start(text: str) -> date:
    """``YYYY-MM-DD`` or InvalidInputError."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"--start {text!r} is not a date; use YYYY-MM-DD, e.g. 2025-11-01"
        ) from None
