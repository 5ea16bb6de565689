"""Plain result objects every monitor returns (and the dashboard, reports and JSON export read).

A number is never shown alone: an ``Estimate`` carries its n, its 95% CI and the method, and a
``status`` that makes "insufficient data" and "undefined" explicit instead of a silent 0 or NaN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    INSUFFICIENT_DATA = "insufficient_data"  # denominator below the stated minimum n
    UNDEFINED = "undefined"  # no denominator at all (e.g. PPV with no positive calls)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A metric with its uncertainty. ``value``/``ci_*`` are None unless status is OK."""

    metric: str  # sensitivity / specificity / ppv / npv / flag_rate / fp_per_study / auc / ...
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int  # the denominator (cases the metric is computed over)
    status: Status
    method: str  # "wilson", "delong", "poisson-exact", ...
    numerator: int | None = None
    min_n: int | None = None  # the stated minimum below which status is INSUFFICIENT_DATA

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = str(self.status)
        return d

    def display(self, digits: int = 3) -> str:
        """'0.912 (0.880-0.937), n=412' or the status in words."""
        if self.status is Status.OK and self.value is not None:
            return (
                f"{self.value:.{digits}f} ({self.ci_low:.{digits}f}-{self.ci_high:.{digits}f}), "
                f"n={self.n}"
            )
        words = "insufficient data" if self.status is Status.INSUFFICIENT_DATA else "undefined"
        return f"{words} (n={self.n})"
