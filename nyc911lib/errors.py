"""Errors a user can act on. Each message names the problem; the CLI prints it as one line."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """An error as one line: its first non-empty line (Spark's errors carry a JVM stack trace
    and hints on the lines after it). A Py4J error's first line only names the Java call
    (`An error occurred while calling ...`): its Java exception's own line says what went wrong."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if type(exc).__name__ == "Py4JJavaError":
        java = [line.removeprefix(": ") for line in lines if line.startswith(": ")]
        lines = java or lines
    return lines[0] if lines else type(exc).__name__


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


class EngineError(Nyc911Error):
    """The engine cannot run as asked (unknown, not installed, or another one already runs)."""


class JavaNotFoundError(Nyc911Error):
    """No usable Java 17+ runtime for Spark."""


class ConcurrentRunError(Nyc911Error):
    """Another run holds the warehouse."""


class MixedSourcesError(Nyc911Error):
    """A publication would mix the built-in synthetic sample with real data in one warehouse."""
