"""The report's plots as base64 PNGs for an HTML page that needs no other file.

matplotlib (``edgemri[plot]``) is imported here only, with the Agg backend, so a Pi without it
still gets every table; the page then says the plots were skipped.
"""

from __future__ import annotations

import base64
import io
from typing import Any


def plot_images(report: dict[str, Any]) -> tuple[list[tuple[str, str]], str | None]:
    """[(title, base64 png)], and a note when plots could not be drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return [], 'Plots skipped: matplotlib is not installed (pip install "edgemri[plot]").'
    out = []
    for title, draw in (("Latency per target", latency_plot), ("Accuracy vs size", accuracy_size_plot),
                        ("Confusion matrices", confusion_plot)):
        fig = draw(plt, report)
        if fig is not None:
            out.append((title, _png(fig)))
            plt.close(fig)
    return out, None


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def latency_plot(plt: Any, report: dict[str, Any]) -> Any:
    """p50 bars per (target, threads), whiskers up to p90 (thick) and p99 (thin)."""
    rows = [r for r in report.get("rows", []) if (r.get("latency_model_ms") or {}).get("p50") is not None]
    if not rows:
        return None
    labels = [f"{r['name']}\n{r.get('threads')} thr" for r in rows]
    p50 = [r["latency_model_ms"]["p50"] for r in rows]
    p90 = [r["latency_model_ms"]["p90"] for r in rows]
    p99 = [r["latency_model_ms"]["p99"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(rows)), 3.8))
    xs = range(len(rows))
    ax.bar(xs, p50, color="#4c78a8", label="p50")
    ax.errorbar(xs, p50, yerr=[[0] * len(rows), [b - a for a, b in zip(p50, p90)]], fmt="none",
                ecolor="black", elinewidth=2.5, capsize=0, label="p90")
    ax.errorbar(xs, p50, yerr=[[0] * len(rows), [b - a for a, b in zip(p50, p99)]], fmt="none",
                ecolor="black", elinewidth=0.8, capsize=4, label="p99")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=8)
    if max(p50) > 20 * max(min(p50), 1e-6):  # a Keras row next to int8 rows: keep both readable
        ax.set_yscale("log")
    ax.set_ylabel("model latency, batch 1 (ms)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def accuracy_size_plot(plt: Any, report: dict[str, Any]) -> Any:
    seen, pts = set(), []
    for r in report.get("rows", []):
        acc = (r.get("metrics") or {}).get("accuracy")
        if r["name"] in seen or acc is None or not r.get("file_size_bytes"):
            continue
        seen.add(r["name"])
        pts.append((r["name"], r["file_size_bytes"] / 1e6, 100.0 * acc))
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.scatter([p[1] for p in pts], [p[2] for p in pts], color="#f58518")
    for name, x, y in pts:
        ax.annotate(name, (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("file size (MB, log)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    return fig


def confusion_plot(plt: Any, report: dict[str, Any]) -> Any:
    seen, mats = set(), []
    for r in report.get("rows", []):
        cm = (r.get("metrics") or {}).get("confusion_matrix")
        if r["name"] in seen or cm is None:
            continue
        seen.add(r["name"])
        mats.append((r["name"], cm))
    if not mats:
        return None
    classes = report.get("eval", {}).get("classes", [])
    cols = min(3, len(mats))
    nrows = (len(mats) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat[len(mats):]:
        ax.axis("off")
    for ax, (name, cm) in zip(axes.flat, mats):
        ax.imshow(cm, cmap="Blues")
        ax.set_title(name, fontsize=9)
        ax.set_xticks(range(len(classes)))
        ax.set_yticks(range(len(classes)))
        ax.set_xticklabels(classes, rotation=45, ha="right", fontsize=7)
        ax.set_yticklabels(classes, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        top = max(max(row) for row in cm) or 1
        for i, row in enumerate(cm):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if v > top / 2 else "black")
    fig.tight_layout()
    return fig
