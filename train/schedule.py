"""Learning-rate schedules with warm-up, set once per epoch, with state a checkpoint can hold.

Cosine is a pure function of the epoch (resumes exactly); plateau keeps (lr, best, wait) in a
dict that the checkpoint saves.
"""

from __future__ import annotations

import math
from typing import Any


def warmup_cosine(epoch: int, epochs: int, base_lr: float, warmup: int, min_factor: float) -> float:
    """Linear warm-up over ``warmup`` epochs, then cosine decay to ``base_lr * min_factor``."""
    if epoch < warmup:
        return base_lr * (epoch + 1) / (warmup + 1)
    span = max(1, epochs - warmup - 1)
    t = min(1.0, (epoch - warmup) / span)
    low = base_lr * min_factor
    return low + (base_lr - low) * 0.5 * (1.0 + math.cos(math.pi * t))


class LrSchedule:
    """Per-epoch learning rate for ``cosine``, ``plateau`` or ``constant`` (all with warm-up)."""

    def __init__(self, kind: str, base_lr: float, epochs: int, warmup: int, min_factor: float,
                 plateau_factor: float = 0.5, plateau_patience: int = 2, state: dict[str, Any] | None = None):
        self.kind, self.base_lr, self.epochs, self.warmup = kind, base_lr, epochs, warmup
        self.min_lr = base_lr * min_factor
        self.min_factor = min_factor
        self.plateau_factor, self.plateau_patience = plateau_factor, plateau_patience
        self.state = dict(state or {"lr": base_lr, "best": None, "wait": 0})

    def lr_for(self, epoch: int) -> float:
        if self.kind == "cosine":
            return warmup_cosine(epoch, self.epochs, self.base_lr, self.warmup, self.min_factor)
        if epoch < self.warmup:
            return self.base_lr * (epoch + 1) / (self.warmup + 1)
        return float(self.state["lr"]) if self.kind == "plateau" else self.base_lr

    def after_epoch(self, epoch: int, val_loss: float) -> None:
        """Plateau: halve (``plateau_factor``) after ``plateau_patience`` epochs without improvement."""
        if self.kind != "plateau" or epoch < self.warmup:
            return
        best = self.state["best"]
        if best is None or val_loss < best - 1e-4:
            self.state.update(best=float(val_loss), wait=0)
            return
        self.state["wait"] += 1
        if self.state["wait"] >= self.plateau_patience:
            self.state.update(lr=max(self.min_lr, float(self.state["lr"]) * self.plateau_factor), wait=0)
