"""``edgemri train`` and ``edgemri evaluate``. Module level: typer + stdlib only (no Keras/TF)."""

from __future__ import annotations

from pathlib import Path

import typer

# Kept in sync with edgemri.train.models.MODELS (tests check it) so --help needs no Keras import.
ARCHS = ("mobilenetv2", "convmixer", "convmixer-edge", "simple-cnn", "mobilenet", "densenet121")


def train_command(
    data: Path | None = typer.Option(None, "--data", help="Dataset root: ROOT/<class>/<image> or "
                                        "ROOT/{train,val,test}/<class>/<image>. Required unless --resume."),
    arch: str = typer.Option("mobilenetv2", "--arch", help=f"Architecture: {', '.join(ARCHS)}."),
    out: Path | None = typer.Option(None, "--out", help="Run directory to create (default runs/<arch>)."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue the run in this directory at its "
                                          "next epoch (its config.json wins; --epochs may extend it)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Number of epochs (default 20)."),
    image_size: int = typer.Option(224, "--image-size", help="Square input size in pixels."),
    batch_size: int = typer.Option(32, "--batch-size", help="Images per training batch."),
    lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate (after warm-up)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the split, weight init, data order and augmentation."),
    arch_opt: list[str] = typer.Option([], "--arch-opt", help="Architecture option KEY=VALUE, repeatable "
                                       "(mobilenetv2: alpha, dropout; convmixer: dim, depth, kernel, patch, "
                                       "activation, dropout; simple-cnn: filters, dropout)."),
    weights: Path | None = typer.Option(None, "--weights", help="ImageNet .h5/.weights.h5 on disk to start "
                                           "from (loaded by layer name, mismatches skipped)."),
    freeze_epochs: int = typer.Option(0, "--freeze-epochs", help="Fine-tuning: train only the head for this "
                                      "many epochs with the backbone frozen."),
    fine_tune_layers: int | None = typer.Option(None, "--fine-tune-layers", help="Fine-tuning: after the "
                                                   "frozen epochs unfreeze only the last N weighted layers "
                                                   "(default all)."),
    fine_tune_lr_factor: float = typer.Option(0.1, "--fine-tune-lr-factor", help="LR multiplier while "
                                              "fine-tuning after frozen epochs."),
    val_fraction: float = typer.Option(0.15, "--val-fraction", help="Share of images held out for validation."),
    test_fraction: float = typer.Option(0.0, "--test-fraction", help="Share of images held out for testing."),
    group_pattern: str | None = typer.Option(None, "--group-pattern", help="Regex whose first group names "
                                                "a patient/series; a group never straddles splits."),
    group_duplicates: bool = typer.Option(False, "--group-duplicates", help="Audit the dataset first and keep "
                                          "every cluster of exact/near-duplicate images in one split (no leakage)."),
    merge: list[str] = typer.Option([], "--merge", help="Merge class folders: NEW=OLD1,OLD2 (repeatable), e.g. "
                                    "tumor=glioma,meningioma,pituitary for a tumor/no-tumor task."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable images (counted) instead of "
                                  "failing."),
    task: str = typer.Option("", "--task", help="Task name for the manifest (default: dataset folder name)."),
    augment: str = typer.Option("mri", "--augment", help="Augmentation preset: mri, ultrasound or none."),
    no_flip: bool = typer.Option(False, "--no-flip", help="Disable horizontal flips."),
    vflip: bool = typer.Option(False, "--vflip", help="Enable vertical flips."),
    rotation: float | None = typer.Option(None, "--rotation", help="Max rotation in degrees (0: off)."),
    zoom: float | None = typer.Option(None, "--zoom", help="Max zoom as a fraction (0: off)."),
    shift: float | None = typer.Option(None, "--shift", help="Max shift as a fraction of the size (0: off)."),
    shear: float | None = typer.Option(None, "--shear", help="Max shear in degrees (0: off)."),
    brightness: float | None = typer.Option(None, "--brightness", help="Max brightness change, fraction of "
                                               "full scale (0: off)."),
    contrast: float | None = typer.Option(None, "--contrast", help="Max contrast change as a fraction "
                                             "(0: off)."),
    optimizer: str = typer.Option("adamw", "--optimizer", help="adam or adamw."),
    weight_decay: float = typer.Option(1e-4, "--weight-decay", help="Decoupled weight decay (0: off)."),
    schedule: str = typer.Option("cosine", "--schedule", help="LR schedule: cosine, plateau or constant."),
    warmup_epochs: int = typer.Option(1, "--warmup-epochs", help="Linear LR warm-up epochs."),
    patience: int = typer.Option(5, "--patience", help="Early stopping patience in epochs (0: off; the best "
                                 "weights are restored either way)."),
    monitor: str = typer.Option("val_loss", "--monitor", help="val_loss or val_accuracy (early stopping, "
                                "best weights)."),
    no_class_weights: bool = typer.Option(False, "--no-class-weights", help="Do not weight the loss by "
                                          "inverse class frequency."),
    precise_bn: int = typer.Option(20, "--precise-bn", help="Re-estimate BatchNorm statistics on this many "
                                   "clean training batches before each validation (0: off)."),
    mixed_precision: str = typer.Option("auto", "--mixed-precision", help="auto (on when a GPU is found), on "
                                        "or off."),
    no_tensorboard: bool = typer.Option(False, "--no-tensorboard", help="Do not write TensorBoard logs."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run directory's results."),
) -> None:
    """Train a classifier and write a complete run directory (model, manifest, split, metrics, plots)."""
    from edgemri.errors import UsageError
    from edgemri.train.config import TrainConfig
    from edgemri.train.trainer import train

    if resume is not None:
        import json

        cfg_path = resume / "config.json"
        if not cfg_path.is_file():
            raise UsageError(f"{resume} is not a run directory (no config.json)", "Pass the --out of a run")
        cfg = TrainConfig.from_dict(json.loads(cfg_path.read_text()))
        cfg.out = str(resume)
        if data is not None:
            cfg.data = str(data)
        if epochs is not None:
            cfg.epochs = epochs
        run = train(cfg, resume=True)
        typer.echo(f"run: {run.root}")
        return
    if data is None:
        raise UsageError("--data is required", "Pass the dataset root, e.g. --data ../shared/datasets/busi/train")
    overrides = {"hflip": False if no_flip else None, "vflip": True if vflip else None, "rotation": rotation,
                 "zoom": zoom, "shift": shift, "shear": shear, "brightness": brightness, "contrast": contrast}
    cfg = TrainConfig(
        arch=arch, data=str(data), out=str(out or Path("runs") / arch), arch_options=_parse_opts(arch_opt),
        task=task, epochs=epochs or 20, image_size=image_size, batch_size=batch_size, lr=lr, seed=seed,
        val_fraction=val_fraction, test_fraction=test_fraction, group_pattern=group_pattern, skip_bad=skip_bad,
        group_duplicates=group_duplicates, merge=list(merge),
        augment=augment, augment_overrides={k: v for k, v in overrides.items() if v is not None},
        optimizer=optimizer, weight_decay=weight_decay, schedule=schedule, warmup_epochs=warmup_epochs,
        patience=patience, monitor=monitor, class_weights=not no_class_weights,
        precise_bn=precise_bn, mixed_precision=mixed_precision,
        weights=str(weights) if weights else None, freeze_epochs=freeze_epochs, fine_tune_layers=fine_tune_layers,
        fine_tune_lr_factor=fine_tune_lr_factor, tensorboard=not no_tensorboard, overwrite=overwrite,
    )
    run = train(cfg)
    typer.echo(f"run: {run.root}")


def _parse_opts(items: list[str]) -> dict[str, str]:
    from edgemri.errors import UsageError

    opts = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--arch-opt {item!r} is not KEY=VALUE", "Example: --arch-opt alpha=0.5")
        opts[key.strip().replace("-", "_")] = value.strip()
    return opts


def evaluate_command(
    run: Path = typer.Argument(..., help="Run directory (the --out of edgemri train)."),
    data: Path | None = typer.Option(None, "--data", help="Labelled folder ROOT/<class>/<image> to evaluate "
                                        "on (default: the run's own split)."),
    split: str = typer.Option("val", "--split", help="Split of the run (or of a split-folders --data): "
                              "train, val or test."),
) -> None:
    """Write metrics.json and a confusion matrix for a labelled folder, under RUN/evaluate/."""
    from edgemri.train.evaluate import evaluate

    report = evaluate(run, data_root=data, split=split)
    typer.echo(f"accuracy {report['accuracy']:.4f}  balanced {report['balanced_accuracy']:.4f}  "
               f"macro F1 {report['macro_f1']:.4f}  ROC AUC {report['roc_auc']:.4f}  ECE {report['ece']:.4f}  "
               f"(n={report['n']})")
    typer.echo(f"written: {report['output_dir']}")


def explain_command(
    run: Path = typer.Argument(..., help="Run directory (the --out of edgemri train)."),
    images: list[Path] = typer.Argument(..., help="Image files to explain."),
    out: Path | None = typer.Option(None, "--out", help="Folder for the overlays (default RUN/explain)."),
    layer: str | None = typer.Option(None, "--layer", help="Layer to explain (default: the last spatial one)."),
    class_name: str | None = typer.Option(None, "--class", help="Class to explain (default: the predicted one)."),
) -> None:
    """Grad-CAM overlays (PNG) showing which image regions drove the prediction."""
    from edgemri.train.explain import explain

    for item in explain(run, list(images), out or run / "explain", layer=layer, class_name=class_name):
        typer.echo(f"{item['image']}: {item['class']} (layer {item['layer']}) -> {item['png']}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the ``edgemri`` app."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("explain")(explain_command)
