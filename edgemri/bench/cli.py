"""CLI commands of this area. Import only typer and the standard library at module level."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the ``edgemri`` app."""
