"""Domain errors. Raised deep inside, turned into one friendly line only at the edge (CLI, page)."""

from __future__ import annotations


class VigilError(Exception):
    """Base class for every error Vigil raises on purpose."""


class ConfigError(VigilError):
    """A setting is missing, malformed or unsafe. Always names the key and the fix."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        self.key, self.problem, self.fix = key, problem, fix
        super().__init__(f"setting {key!r}: {problem}. Fix: {fix}")


class StoreError(VigilError):
    """The database cannot be reached, migrated or written."""


class NotFoundError(VigilError):
    """A named thing (model, alert, profile, study) does not exist."""


class InvalidInputError(VigilError):
    """A user-supplied option or file is not acceptable; the message says why and what to do."""
