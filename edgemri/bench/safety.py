"""The bench's safety section: calibration before/after and the share the OOD guard flags.

Per artifact, on the evaluation images: ECE and Brier score of the model's own probabilities and
of the calibrated ones (the manifest's temperature), the reliability bins behind a diagram, and
the share of images the out-of-distribution guard rejects, on the evaluation set (in
distribution: should be <= 5%) and on out-of-distribution sets: synthetic noise and synthetic
textures always, plus any image folders given (``ood_data``: BUSI for a brain model, brain MRI
for a BUSI model). Everything goes through the runtime ``Predictor``, as a deployment runs it.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("edgemri.bench")
SYNTHETIC = 40  # images per synthetic OOD set
MAX_OOD_IMAGES = 300  # per folder, evenly spaced


def synthetic_sets(size: int = 224, n: int = SYNTHETIC, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Uniform noise and 1/f ("natural-image-like") textures, colour and gray; deterministic."""
    rng = np.random.default_rng(seed)
    noise = [rng.integers(0, 256, (size, size), dtype=np.uint8) for _ in range(n)]
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None]
    falloff = 1.0 / (np.sqrt(fy ** 2 + fx ** 2) + 1e-3)
    textures = []
    for _ in range(n):
        spec = np.fft.fft2(rng.normal(size=(size, size, 3)), axes=(0, 1)) * falloff[..., None]
        img = np.real(np.fft.ifft2(spec, axes=(0, 1)))
        textures.append(((img - img.min()) / (np.ptp(img) + 1e-12) * 255).astype(np.uint8))
    gray = [t.mean(axis=-1).astype(np.uint8) for t in textures]
    return {"synthetic noise": noise, "synthetic texture (colour)": textures, "synthetic texture (gray)": gray}


def folder_set(folder: Path) -> list[Path]:
    from edgemri.runtime.images import find_images

    found = find_images(folder)
    if len(found) <= MAX_OOD_IMAGES:
        return found
    step = len(found) / MAX_OOD_IMAGES
    return [found[int(i * step)] for i in range(MAX_OOD_IMAGES)]


def safety_section(models: list[Any], paths: list[str], labels: list[int],
                   ood_data: list[str | Path] | None = None) -> dict[str, Any]:
    """``report["safety"]``: one entry per artifact (Keras reference and missing files skipped)."""
    sets: dict[str, list[Any]] = dict(synthetic_sets())
    for folder in ood_data or []:
        sets[f"{Path(folder).name} (folder)"] = list(folder_set(Path(folder)))
    out = []
    for model in models:
        if getattr(model, "kind", "artifact") != "artifact" or model.path is None or not Path(model.path).is_file():
            continue
        try:
            out.append(_one(model.name, Path(model.path), paths, labels, sets))
        except Exception as exc:  # noqa: BLE001 - one artifact's failure must not lose the report
            log.warning("safety section: %s failed: %s", model.name, exc)
            out.append({"name": model.name, "error": f"{type(exc).__name__}: {exc}"})
    return {"models": out, "ood_sets": {k: len(v) for k, v in sets.items()}}


def _one(name: str, path: Path, paths: list[str], labels: list[int], sets: dict[str, list[Any]]) -> dict[str, Any]:
    from edgemri.runtime.calibration import apply_temperature, calibration_metrics, ece_floor, reliability
    from edgemri.runtime.predictor import Predictor

    predictor = Predictor.load(path)
    preds = predictor.predict(paths)
    y = np.asarray(labels, dtype=np.int64)
    probs = np.stack([p.probabilities for p in preds]).astype(np.float64)
    # the calibrated probabilities back to the model's own: T^-1 applied to log p (exact up to the floor)
    raw = apply_temperature(probs, 1.0 / predictor.temperature) if predictor.temperature != 1.0 else probs
    entry: dict[str, Any] = {
        "name": name, "temperature": predictor.temperature, "guard": predictor.guard.enabled,
        "before": calibration_metrics(raw, y), "after": calibration_metrics(probs, y),
        "ece_floor": ece_floor(probs),
        "reliability_before": reliability(raw, y), "reliability_after": reliability(probs, y),
        "flagged": {"evaluation set": _flagged(preds)},
    }
    if predictor.guard.enabled:
        for set_name, items in sets.items():
            entry["flagged"][set_name] = _flagged(predictor.predict(items))
    return entry


def _flagged(preds: list[Any]) -> float | None:
    verdicts = [p.verdict.in_distribution for p in preds if p.verdict is not None]
    if not verdicts or verdicts[0] is None:
        return None
    return float(np.mean([v is False for v in verdicts]))


# -- report ----------------------------------------------------------------------------------------
def safety_tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Calibration before/after and the share flagged, as report tables (markdown and HTML)."""
    models = [m for m in (report.get("safety") or {}).get("models", []) if "error" not in m]
    if not models:
        return []
    cal = [[m["name"], f"{m['temperature']:.3f}", _f4(m["before"]["ece"]), _f4(m["after"]["ece"]), _floor(m),
            _f4(m["before"]["brier"]), _f4(m["after"]["brier"])] for m in models]
    sets = list(dict.fromkeys(k for m in models for k in m["flagged"]))
    ood = [[m["name"]] + [_pct(m["flagged"].get(s)) if m["guard"] else "guard off" for s in sets] for m in models]
    return [("Calibration (temperature from the manifest; evaluation set)",
             ["target", "T", "ECE before", "ECE after", "ECE if calibrated (mean / p95)",
              "Brier before", "Brier after"], cal),
            ("Out-of-distribution guard: share of images flagged (%)", ["target"] + sets, ood)]


def reliability_svg(models: list[dict[str, Any]]) -> str:
    """A reliability diagram per artifact (before: grey, after: blue) as inline SVG, no matplotlib."""
    cells = []
    for m in models:
        if "error" in m:
            continue
        size, pad = 220, 24
        parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{size + 2 * pad}' height='{size + 2 * pad + 16}'>",
                 f"<text x='{pad}' y='14' font-size='12'>{html.escape(m['name'])} (T={m['temperature']:.3f})</text>",
                 f"<rect x='{pad}' y='{pad}' width='{size}' height='{size}' fill='none' stroke='#999'/>",
                 f"<line x1='{pad}' y1='{pad + size}' x2='{pad + size}' y2='{pad}' stroke='#bbb' stroke-dasharray='4'/>"]
        for key, colour in (("reliability_before", "#999"), ("reliability_after", "#1f77b4")):
            pts = [(b["confidence"], b["accuracy"]) for b in m[key] if b["count"]]
            path = " ".join(f"{pad + c * size:.1f},{pad + size - a * size:.1f}" for c, a in pts)
            parts.append(f"<polyline points='{path}' fill='none' stroke='{colour}' stroke-width='2'/>")
        parts.append(f"<text x='{pad}' y='{size + 2 * pad + 10}' font-size='11'>confidence → (y: accuracy); "
                     "grey before, blue after</text></svg>")
        cells.append("".join(parts))
    if not cells:
        return ""
    return "<h2>Reliability diagrams</h2><div>" + "".join(cells) + "</div>"


def _floor(model: dict[str, Any]) -> str:
    """The small-sample ECE of perfect probabilities (reports written before it existed: –)."""
    floor = model.get("ece_floor")
    return "–" if not floor else f"{floor['mean']:.4f} / {floor['p95']:.4f}"


def _f4(v: Any) -> str:
    return "–" if v is None else f"{v:.4f}"


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100.0 * v:.1f}"
