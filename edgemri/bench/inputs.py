"""What a benchmark measures: the evaluation images and the models (FP32 reference + artifacts).

Evaluation images come from ``--data ROOT`` (a labelled folder) or, by default, the run's own
validation split, so an artifact is judged on exactly the images the Keras model was validated on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgemri.errors import DataError, UsageError
from edgemri.rundir import RunDir
from edgemri.runtime.formats import FORMATS

REFERENCE = "keras-fp32"


@dataclass(frozen=True)
class EvalSet:
    paths: list[str]
    labels: list[int]
    classes: list[str]
    source: str  # "split:val" or the data root


@dataclass(frozen=True)
class BenchModel:
    """One model to measure: a name, the model file (None when conversion left nothing), why not."""

    name: str
    path: Path | None
    kind: str = "artifact"  # or "keras"
    verification: dict[str, Any] | None = None
    reason: str | None = None  # set when there is nothing to measure

    @property
    def verification_failed(self) -> bool:
        return _verification_failed(self.verification)


def eval_set(run: RunDir, classes: list[str], data: str | Path | None = None,
             max_images: int | None = None, split_name: str = "val") -> EvalSet:
    """The images + integer labels (in the model's class order) the benchmark predicts."""
    if data is not None:
        from edgemri.data.discover import discover

        index = discover(Path(data))
        samples, source = list(index.samples), str(data)
    else:
        from edgemri.data.split import Split

        if not run.split_path.is_file():
            raise DataError(f"{run.root} has no split.json", "Pass --data ROOT with labelled images")
        split = Split.load(run.split_path)
        samples, source = list(split.samples(split_name)), f"split:{split_name}"
        root = Path(getattr(split, "root", "") or "")
        samples = [_absolute(s, root) for s in samples]
    unknown = sorted({s.label for s in samples} - set(classes))
    if unknown:
        raise DataError(f"{source} has classes the model does not know: {', '.join(unknown)}",
                        f"The model's classes are {', '.join(classes)}")
    if not samples:
        raise DataError(f"no evaluation images in {source}", "Pass --data ROOT with labelled images")
    samples = subsample(sorted(samples, key=lambda s: str(s.path)), max_images)
    return EvalSet([str(s.path) for s in samples], [classes.index(s.label) for s in samples],
                   list(classes), source)


def _absolute(sample: Any, root: Path) -> Any:
    path = Path(sample.path)
    if path.is_absolute() or not str(root):
        return sample
    from dataclasses import replace

    return replace(sample, path=root / path)


def subsample(items: list[Any], max_images: int | None) -> list[Any]:
    """Evenly spaced ``max_images`` of a sorted list: deterministic, and keeps every class present."""
    if not max_images or max_images >= len(items):
        return items
    if max_images < 1:
        raise UsageError("--max-images must be at least 1")
    step = len(items) / max_images
    return [items[int(i * step)] for i in range(max_images)]


def artifact_names() -> list[str]:
    """The file names a conversion can leave in ``RUN/export/<target>/``: one per runnable format."""
    return [f.filename for f in FORMATS.entries() if f.backend is not None]


def find_artifact(target_dir: Path) -> Path | None:
    for name in artifact_names():
        if (target_dir / name).is_file():
            return target_dir / name
    return None


def read_verification(target_dir: Path) -> dict[str, Any] | None:
    path = target_dir / "verification.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return {"status": "unreadable", "reason": f"{path}: {exc}"}
    return data if isinstance(data, dict) else {"status": "unreadable", "reason": f"{path} is not an object"}


def _verification_failed(ver: dict[str, Any] | None) -> bool:
    """True when conversion says the artifact disagrees with the FP32 model beyond its gate.

    ``edgemri convert`` writes status "ok" or "failed-verification" (convert.verify.compare);
    an unreadable verification.json is reported as such, not as a failed gate.
    """
    return ver is not None and ver.get("status") == "failed-verification"


def targets(run: RunDir, names: list[str] | None = None) -> list[BenchModel]:
    """The FP32 reference first, then each requested (default: every exported) target."""
    export = run.export_dir
    found = sorted(p.name for p in export.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if export.is_dir() else []
    wanted = list(names) if names else found
    rows = [BenchModel(REFERENCE, run.model, kind="keras")]
    for name in wanted:
        if name == REFERENCE:
            continue
        tdir = export / name
        if not tdir.is_dir():
            _check_known(name)
        artifact = find_artifact(tdir) if tdir.is_dir() else None
        ver = read_verification(tdir) if tdir.is_dir() else None
        reason = None
        if artifact is None:
            why = (ver or {}).get("reason")
            reason = f"conversion failed: {why}" if why else \
                f"no artifact in {tdir} (run: edgemri convert {run.root} --target {name})"
        rows.append(BenchModel(name, artifact, verification=ver, reason=reason))
    return rows


def _check_known(name: str) -> None:
    """A typo in --targets is a usage error ("Did you mean"), not a failed row."""
    from edgemri.convert.targets import TARGETS

    TARGETS.get(name)
