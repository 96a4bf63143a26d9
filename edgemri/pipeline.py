"""The main job: synthetic data -> train -> QAT -> convert -> bench, end to end (``edgemri demo``)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``edgemri demo``."""
