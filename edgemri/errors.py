"""One error hierarchy for everything a user can cause.

The CLI turns any ``EdgemriError`` into one line on stderr and a non-zero exit; anything else is a
bug and keeps its traceback. Each error carries an optional ``hint`` saying what to do next.
"""

from __future__ import annotations


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
        return f"{text}. {self.hint}" if self.hint else f"{text}."


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


class VerificationError(EdgemriError):
    """An artifact converted but disagrees with the full-precision model beyond the gate."""

    exit_code = 3


class GateError(EdgemriError):
    """A benchmark gate (--min-accuracy, --max-drop) failed."""

    exit_code = 3
