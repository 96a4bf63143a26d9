"""`edgemri bundle`: a device folder (model, manifest, labels, parity fixtures) for Android and the Pi."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the ``edgemri`` app."""
