"""PNG figures for run directories and reports: confusion matrix and training curves.

matplotlib is imported lazily with the Agg backend (no display on a training box or in CI), and
every figure is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgemri.atomic import atomic_path
from edgemri.extras import require


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "plot", "plots")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_confusion_matrix(cm: np.ndarray, classes: Sequence[str], path: str | os.PathLike[str],
                          title: str = "Confusion matrix") -> Path:
    """Counts with row-normalized colour (recall per true class), so rare classes stay visible."""
    plt = _pyplot()
    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    size = 1.2 + 0.9 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if frac[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    fig.tight_layout()
    return _save(plt, fig, path)


def save_curves(history: Sequence[dict[str, Any]], path: str | os.PathLike[str], title: str = "") -> Path:
    """Loss and accuracy per epoch, train vs validation."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.plot(epochs, [row[key] for row in history], marker="o", label=f"train {key}")
        ax.plot(epochs, [row[f"val_{key}"] for row in history], marker="o", label=f"val {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: str | os.PathLike[str]) -> Path:
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return Path(path)
