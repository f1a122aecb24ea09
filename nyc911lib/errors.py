"""Errors a user can act on. Each message names the problem; the CLI prints it as one line."""

from __future__ import annotations


class Nyc911Error(Exception):
    """Base class: the CLI turns these into a one-line message and a non-zero exit."""


class ParamsError(Nyc911Error):
    """The params file is missing, unreadable or inconsistent."""


class SourceError(Nyc911Error):
    """The source export is missing, empty or not in the expected format."""


class MissingColumnsError(SourceError):
    """The source lacks columns the pipeline needs."""

    def __init__(self, source: str, missing: list[str], present: list[str]) -> None:
        self.missing = missing
        self.present = present
        super().__init__(f"{source}: missing required columns {missing}; the file has {present}")


class QualityRuleError(Nyc911Error):
    """A quality rule with action `fail` was violated: nothing was written."""


class JavaNotFoundError(Nyc911Error):
    """No usable Java 17+ runtime for Spark."""


class ConcurrentRunError(Nyc911Error):
    """Another run holds the warehouse."""
