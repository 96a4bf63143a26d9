"""The run directory: the one place a trained model and everything about it lives.

Training writes it; QAT, conversion, benchmarks, bundles and ``evaluate`` read it. Paths are
defined here once so no module guesses a file name::

    runs/<name>/
      model.keras  manifest.json  split.json  config.json  history.csv  metrics.json
      confusion_matrix.png  curves.png  checkpoint/  logs/
      qat/        saved_model/  manifest.json  metrics.json
      export/     <artifact> + <artifact>.json  (one per conversion target)
      bench/      report.json  report.md  report.html
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgemri.errors import RunError
from edgemri.runtime.manifest import Manifest


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunDir:
        """An existing run; a clear error when it is not one."""
        run = cls(Path(path))
        if not run.root.is_dir():
            raise RunError(f"run directory {run.root} not found", "Train one first: edgemri train --out DIR")
        if not run.model.is_file():
            raise RunError(f"{run.root} has no model.keras", "Train into it first, or pass the right run")
        return run

    @classmethod
    def create(cls, path: str | os.PathLike[str], overwrite: bool = False) -> RunDir:
        """A new run directory; refuses to reuse a non-empty one unless ``overwrite``."""
        run = cls(Path(path))
        if run.root.exists() and any(run.root.iterdir()) and not overwrite:
            raise RunError(
                f"run directory {run.root} already exists",
                "Pick another --out, pass --resume to continue it, or --overwrite to replace it",
            )
        run.root.mkdir(parents=True, exist_ok=True)
        return run

    # files
    model = property(lambda self: self.root / "model.keras")
    manifest_path = property(lambda self: self.root / "manifest.json")
    split_path = property(lambda self: self.root / "split.json")
    config_path = property(lambda self: self.root / "config.json")
    history_path = property(lambda self: self.root / "history.csv")
    metrics_path = property(lambda self: self.root / "metrics.json")
    checkpoint_dir = property(lambda self: self.root / "checkpoint")
    logs_dir = property(lambda self: self.root / "logs")
    qat_dir = property(lambda self: self.root / "qat")
    qat_saved_model = property(lambda self: self.root / "qat" / "saved_model")
    export_dir = property(lambda self: self.root / "export")
    bench_dir = property(lambda self: self.root / "bench")

    def manifest(self) -> Manifest:
        if not self.manifest_path.is_file():
            raise RunError(f"{self.root} has no manifest.json", "Re-run training, which writes it")
        return Manifest.load(self.manifest_path)

    def config(self) -> dict[str, Any]:
        return _read_json(self.config_path, self.root)

    def has_qat(self) -> bool:
        return self.qat_saved_model.is_dir()


def _read_json(path: Path, run_root: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RunError(f"{run_root} has no {path.name}", "Re-run training, which writes it")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(f"{path} is not valid JSON: {exc}") from exc
