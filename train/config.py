"""TrainConfig: every option of a training run, saved verbatim as ``config.json``.

A resumed run reads its config back from there, so everything that shapes training must live
here (and nothing else may). The defaults live here only: ``edgemri train`` reads its option
defaults with :func:`default`, so the CLI, the Python API and config.json cannot drift apart.
Import cost: stdlib + edgemri.errors only (the CLI module imports this at ``--help`` time).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgemri.errors import UsageError

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("cosine", "plateau", "constant")
MONITORS = ("val_loss", "val_accuracy")
MIXED_PRECISION = ("auto", "on", "off")
#: ``--precision``: auto follows --mixed-precision; the others are Keras dtype policies.
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
#: ``--lr-scaling``: linear multiplies --lr by global batch / --batch-size (Goyal et al., 2017).
LR_SCALINGS = ("linear", "none")
#: ``--arch`` when none is given (the published edge backbone).
DEFAULT_ARCH = "mobilenetv2"


@dataclass
class TrainConfig:
    """Defaults follow the published MobileNetV2 brain-MRI recipes, sized for a CPU."""

    arch: str
    data: str
    out: str
    arch_options: dict[str, Any] = field(default_factory=dict)
    task: str = ""  # default: the dataset folder name
    epochs: int = 20
    image_size: int = 224
    color: str = "gray3"
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.0
    group_pattern: str | None = None
    group_duplicates: bool = False  # keep each cluster of exact/near duplicates in one split (audit)
    merge: list[str] = field(default_factory=list)  # "tumor=glioma,meningioma,pituitary": merged classes
    skip_bad: bool = False
    augment: str = "mri"
    augment_overrides: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "adamw"  # what every published run used
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: int = 1
    min_lr_factor: float = 0.01
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    patience: int = 5  # early stopping; 0 disables it (best weights are still restored)
    monitor: str = "val_loss"
    restore_best: bool = True
    class_weights: bool = True
    # Cross-entropy label smoothing (0: off): the target puts 1 - e on the true class, e / classes on each.
    label_smoothing: float = 0.0
    # Mixup (Zhang et al., 2018): each batch blends with a shuffled copy of itself, weight ~ Beta(a, a); 0: off.
    mixup: float = 0.0
    # CutMix (Yun et al., 2019): a box of a shuffled copy pasted into each image, area ~ Beta(a, a); 0: off.
    # With mixup also on, each batch gets one of the two (probability 1/2 each).
    cutmix: float = 0.0
    # Exponential moving average of the weights (Keras optimizers' use_ema): the momentum, 0: off. Validation,
    # the best checkpoint and model.keras hold the average; training continues from the raw weights.
    ema: float = 0.0
    precise_bn: int = 20  # batches of clean training images to re-estimate BN statistics on (0: off)
    mixed_precision: str = "auto"
    # -- devices and input pipeline (train/distribute.py) --
    devices: str = "1"  # "auto" or a count; more than 1 needs KERAS_BACKEND=jax (keras.distribution)
    global_batch: int | None = None  # default: batch_size x devices (batch_size is per device)
    lr_scaling: str = "linear"  # lr x global_batch / batch_size; 1 on one device unless global_batch is set
    precision: str = "auto"
    loader_workers: int = 0  # loader threads producing batches; 0: one per CPU core
    weights: str | None = None
    freeze_epochs: int = 0
    fine_tune_layers: int | None = None
    fine_tune_lr_factor: float = 0.1
    tensorboard: bool = True
    overwrite: bool = False
    recipe: str | None = None  # --recipe: a packaged recipe's name or a recipe file's path (train/recipes.py)
    # --final-fit RUN: this run retrains RUN's config on RUN's train + val images (RUN's split.json, so the
    # same untouched test split) for a fixed epoch count, no best-epoch restore; val is then seen in training.
    final_fit: str | None = None
    # --holdout F (final fit only): this fraction of RUN's validation images (stratified by class, exact
    # duplicates together) stays out of training, so the final fit can still be calibrated, get its OOD
    # threshold and PTQ calibration images, i.e. be published. 0: every validation image trains.
    final_holdout: float = 0.0
    # --cv-fold I/K: k-fold cross-validation; the test split is fold I of K (edgemri.data.split), so K runs
    # with the same seed test every image once (benchmarks/cv.py runs and pools them). 0/0: a plain split.
    cv_fold: int = 0
    cv_folds: int = 0

    def validate(self) -> TrainConfig:
        """Raise UsageError on a value that cannot work, before anything is written."""
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, not {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, not {self.batch_size}"),
            (self.image_size >= 8, f"--image-size must be >= 8, not {self.image_size}"),
            (0.0 <= self.final_holdout < 1.0, f"--holdout must be in [0, 1), not {self.final_holdout}"),
            (self.lr > 0, f"--lr must be > 0, not {self.lr}"),
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}"),
            (self.monitor in MONITORS, f"--monitor must be one of {', '.join(MONITORS)}"),
            (self.mixed_precision in MIXED_PRECISION,
             f"--mixed-precision must be one of {', '.join(MIXED_PRECISION)}"),
            (self.patience >= 0 and self.warmup_epochs >= 0 and self.freeze_epochs >= 0,
             "--patience, --warmup-epochs and --freeze-epochs must be >= 0"),
            (self.color in ("gray3", "rgb"), "--color must be gray3 or rgb (the backbones take 3 channels)"),
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
            (self.lr_scaling in LR_SCALINGS, f"--lr-scaling must be one of {', '.join(LR_SCALINGS)}"),
            (self.global_batch is None or self.global_batch >= 1,
             f"--global-batch must be >= 1, not {self.global_batch}"),
            (self.loader_workers >= 0, f"--loader-workers must be >= 0 (0: one per core), not {self.loader_workers}"),
            (0.0 <= self.label_smoothing < 1.0,
             f"--label-smoothing must be in [0, 1), not {self.label_smoothing}"),
            (self.mixup >= 0.0, f"--mixup must be >= 0 (a Beta(a, a) parameter; 0: off), not {self.mixup}"),
            (self.cutmix >= 0.0, f"--cutmix must be >= 0 (a Beta(a, a) parameter; 0: off), not {self.cutmix}"),
            (0.0 <= self.ema < 1.0, f"--ema must be in [0, 1) (the averaging momentum, e.g. 0.99; 0: off), not {self.ema}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        from edgemri.train.augment import (
            preset,  # numpy only: an unknown preset or mode fails before the data loads
        )
        from edgemri.train.distribute import parse_devices  # stdlib-only at import, like this module

        preset(self.augment).with_overrides(**self.augment_overrides)
        parse_devices(self.devices)
        from edgemri.data.split import check_folds

        check_folds(self.cv_folds, self.cv_fold)
        return self

    @property
    def task_name(self) -> str:
        if self.task:
            return self.task
        root = Path(self.data)
        return (root.parent.name if root.name in ("train", "training") else root.name) or "classification"

    @property
    def soft_labels(self) -> bool:
        """Whether training targets are class distributions (one-hot, smoothed or mixed) not indices."""
        return self.label_smoothing > 0 or self.mixup > 0 or self.cutmix > 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Read config.json back, ignoring keys this version does not know (written by newer ones)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def parse_cv_fold(text: str | None) -> dict[str, int]:
    """``--cv-fold I/K`` -> ``{"cv_fold": I, "cv_folds": K}`` ({} when not given); range checked in validate."""
    if text is None:
        return {}
    fold, sep, folds = text.partition("/")
    if not (sep and fold.strip().isdigit() and folds.strip().isdigit()):
        raise UsageError(f"--cv-fold {text!r} is not I/K", "Write the fold and the fold count, e.g. --cv-fold 0/5")
    return {"cv_fold": int(fold), "cv_folds": int(folds)}


def default(name: str) -> Any:
    """The default of TrainConfig field ``name`` (a fresh copy for list/dict fields).

    The typer options of ``edgemri train`` take their defaults from here, so a default is
    written once.
    """
    for f in dataclasses.fields(TrainConfig):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise KeyError(f"TrainConfig.{name} has no default")
    raise KeyError(f"TrainConfig has no field {name!r}")
