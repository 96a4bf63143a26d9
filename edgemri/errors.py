"""One error hierarchy for everything a user can cause.

The CLI turns any ``EdgemriError`` into one line on stderr and a non-zero exit; anything else is a
bug and keeps its traceback. Each error carries an optional ``hint`` saying what to do next.
"""

from __future__ import annotations

from typing import Any


class EdgemriError(Exception):
    """Base of every error a user can fix. ``exit_code`` is what the CLI exits with."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message a user sees: what went wrong, then what to do."""
        text = self.message.rstrip(".")
        end = "" if text.endswith(("?", "!")) else "."  # never 'Did you mean "x"?.'
        return f"{text}{end} {self.hint}" if self.hint else f"{text}{end}"


class UsageError(EdgemriError):
    """A bad option, an unknown choice, a combination that makes no sense."""


class MissingExtraError(EdgemriError):
    """An optional dependency is not installed; the hint names the pip command."""


class DataError(EdgemriError):
    """A dataset, an image or a split file is missing, malformed or inconsistent."""


class ImageDecodeError(DataError):
    """One image file could not be decoded."""


class ManifestError(EdgemriError):
    """A model manifest is missing, malformed, or disagrees with its model."""


class ModelFileError(EdgemriError):
    """A model file is missing, truncated, or of an unknown kind."""


class RunError(EdgemriError):
    """A run directory is missing pieces or would be overwritten."""


class ConversionError(EdgemriError):
    """A conversion target failed, or produced an artifact that does not run."""


class GateError(EdgemriError):
    """A quality gate failed (bench --min-accuracy/--max-drop, compare --check, data leakage).

    ``report`` is what the gate judged, when the caller still has something to show (the bench
    CLI prints the report's table before exiting).
    """

    exit_code = 3

    def __init__(self, message: str, hint: str | None = None, report: dict[str, Any] | None = None):
        super().__init__(message, hint)
        self.report = report
