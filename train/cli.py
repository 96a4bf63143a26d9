"""``edgemri train`` and ``edgemri evaluate``. Module level: typer + stdlib only (no Keras/TF).

Choices, help and defaults come from their one source: ``--arch`` and ``--arch-opt`` from the
architecture registry (``MODELS``, which loads no Keras), every other default from ``TrainConfig``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from edgemri.train.config import (
    DEFAULT_ARCH,
    LR_SCALINGS,
    MIXED_PRECISION,
    MONITORS,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    TrainConfig,
    default,
    parse_cv_fold,
)
from edgemri.train.models.registry import MODELS


def _arch_help() -> str:
    """Every registered architecture with its one-line description."""
    return "Architecture, one of: " + "; ".join(f"{e.name}: {e.description}" for e in MODELS.entries()) + "."


def _arch_opt_help() -> str:
    """Every architecture's options with their defaults, read from ``ModelEntry.defaults``."""
    per_arch = "; ".join(f"{e.name}: " + (", ".join(f"{k}={v}" for k, v in e.defaults.items()) or "none")
                         for e in MODELS.entries())
    return f"Architecture option KEY=VALUE, repeatable (defaults per architecture: {per_arch})."


def _one_of(choices: tuple[str, ...]) -> str:
    return ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]


def train_command(
    data: Path | None = typer.Option(None, "--data", help="Dataset root: ROOT/<class>/<image> or "
                                        "ROOT/{train,val,test}/<class>/<image>. Required unless --resume."),
    arch: str = typer.Option(DEFAULT_ARCH, "--arch", help=_arch_help()),
    recipe: str | None = typer.Option(default("recipe"), "--recipe", help="Recipe NAME (edgemri recipes lists "
                                         "them) or PATH of a recipe .toml: pins architecture, size, augmentation, "
                                         "optimizer, schedule, epochs...; the options you type override it."),
    out: Path | None = typer.Option(None, "--out", help="Run directory to create (default runs/<arch>)."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue the run in this directory at its "
                                          "next epoch (its config.json wins; --epochs may extend it)."),
    final_fit: Path | None = typer.Option(None, "--final-fit", help="Retrain the finished run RUN (its "
                                             "config.json: recipe and every resolved value) on its train + "
                                             "validation images for its epoch count (--epochs overrides), then "
                                             "evaluate once on its untouched test split. Writes a new run "
                                             "(--out, default RUN-final)."),
    holdout: float = typer.Option(0.0, "--holdout", help="With --final-fit: keep this fraction of RUN's "
                                  "validation images out of training (stratified; e.g. 0.5), so the final fit "
                                  "is calibrated, gets its OOD threshold and int8 calibration images, and can "
                                  "be published. 0: every validation image trains."),
    epochs: int | None = typer.Option(None, "--epochs", help=f"Number of epochs (default {default('epochs')}; "
                                         "on --resume: the run's own)."),
    image_size: int = typer.Option(default("image_size"), "--image-size", help="Square input size in pixels."),
    batch_size: int = typer.Option(default("batch_size"), "--batch-size", help="Images per training batch."),
    lr: float = typer.Option(default("lr"), "--lr", help="Peak learning rate (after warm-up)."),
    seed: int = typer.Option(default("seed"), "--seed", help="Seed for the split, weight init, data order and "
                             "augmentation."),
    arch_opt: list[str] = typer.Option([], "--arch-opt", help=_arch_opt_help()),
    weights: Path | None = typer.Option(default("weights"), "--weights", help="Weights to start from: an ImageNet "
                                           ".h5/.weights.h5 on disk, or one of your runs (its directory or "
                                           ".keras file); loaded by layer name, mismatches (a new head) skipped."),
    freeze_epochs: int = typer.Option(default("freeze_epochs"), "--freeze-epochs", help="Fine-tuning: train only "
                                      "the head for this many epochs with the backbone frozen."),
    fine_tune_layers: int | None = typer.Option(default("fine_tune_layers"), "--fine-tune-layers", help="Fine-"
                                                   "tuning: after the frozen epochs unfreeze only the last N "
                                                   "weighted layers (default all)."),
    fine_tune_lr_factor: float = typer.Option(default("fine_tune_lr_factor"), "--fine-tune-lr-factor",
                                              help="LR multiplier while fine-tuning after frozen epochs."),
    val_fraction: float = typer.Option(default("val_fraction"), "--val-fraction", help="Share of images held out "
                                       "for validation."),
    test_fraction: float = typer.Option(default("test_fraction"), "--test-fraction", help="Share of images held "
                                        "out for testing."),
    cv_fold_spec: str | None = typer.Option(None, "--cv-fold", help="I/K: k-fold cross-validation, test on fold I of K "
                                       "(0-based; replaces --test-fraction). K runs test every image once; "
                                       "benchmarks/cv.py runs and pools them."),
    group_pattern: str | None = typer.Option(default("group_pattern"), "--group-pattern", help="Regex whose first "
                                                "group names a patient/series; a group never straddles splits."),
    group_duplicates: bool = typer.Option(default("group_duplicates"), "--group-duplicates", help="Audit the "
                                          "dataset first and keep every cluster of exact/near-duplicate images "
                                          "in one split (no leakage)."),
    merge: list[str] = typer.Option(default("merge"), "--merge", help="Merge class folders: NEW=OLD1,OLD2 "
                                    "(repeatable), e.g. tumor=glioma,meningioma,pituitary for a tumor/no-tumor "
                                    "task."),
    skip_bad: bool = typer.Option(default("skip_bad"), "--skip-bad", help="Skip unreadable images (counted) "
                                  "instead of failing."),
    task: str = typer.Option(default("task"), "--task", help="Task name for the manifest (default: dataset "
                             "folder name)."),
    augment: str = typer.Option(default("augment"), "--augment", help="Augmentation preset: mri, ultrasound or "
                                "none."),
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
    crop_scale: float | None = typer.Option(None, "--crop-scale", help="Random resized crop (torchvision's): "
                                            "smallest crop area as a fraction, e.g. 0.08 (0: off)."),
    brightness_mode: str | None = typer.Option(None, "--brightness-mode", help="How --brightness applies: add "
                                               "(+-F x 255, Keras RandomBrightness) or scale (x 1+-F, torchvision "
                                               "ColorJitter)."),
    optimizer: str = typer.Option(default("optimizer"), "--optimizer", help=f"{_one_of(OPTIMIZERS)}."),
    weight_decay: float = typer.Option(default("weight_decay"), "--weight-decay", help="Decoupled weight decay "
                                       "(0: off)."),
    schedule: str = typer.Option(default("schedule"), "--schedule", help=f"LR schedule: {_one_of(SCHEDULES)}."),
    warmup_epochs: int = typer.Option(default("warmup_epochs"), "--warmup-epochs", help="Linear LR warm-up "
                                      "epochs."),
    patience: int = typer.Option(default("patience"), "--patience", help="Early stopping patience in epochs "
                                 "(0: off; the best weights are restored either way)."),
    monitor: str = typer.Option(default("monitor"), "--monitor", help=f"{_one_of(MONITORS)} (early stopping, "
                                "best weights)."),
    no_class_weights: bool = typer.Option(not default("class_weights"), "--no-class-weights", help="Do not "
                                          "weight the loss by inverse class frequency."),
    label_smoothing: float = typer.Option(default("label_smoothing"), "--label-smoothing", help="Cross-entropy "
                                          "label smoothing e: the target is 1 - e on the true class plus e / "
                                          "classes on each (0: off)."),
    mixup: float = typer.Option(default("mixup"), "--mixup", help="Mixup: blend each training batch with a "
                                "shuffled copy, weight ~ Beta(a, a); a = 0.2-0.4 is usual (0: off)."),
    cutmix: float = typer.Option(default("cutmix"), "--cutmix", help="CutMix: paste a box of a shuffled copy "
                                 "into each training image, area share ~ Beta(a, a), at most half; a = 1.0 is "
                                 "usual; with --mixup, each batch gets one of the two (0: off)."),
    ema: float = typer.Option(default("ema"), "--ema", help="Validate and ship an exponential moving average "
                              "of the weights with this momentum per step, e.g. 0.99 (0: off)."),
    precise_bn: int = typer.Option(default("precise_bn"), "--precise-bn", help="Re-estimate BatchNorm statistics "
                                   "on this many clean training batches before each validation (0: off)."),
    mixed_precision: str = typer.Option(default("mixed_precision"), "--mixed-precision", help=f"{MIXED_PRECISION[0]}"
                                        f" (on when a GPU is found), {_one_of(MIXED_PRECISION[1:])}."),
    devices: str = typer.Option(default("devices"), "--devices", help="auto (every visible accelerator, else "
                                "CPU device) or a count: data-parallel over a keras.distribution mesh; more than "
                                "one needs KERAS_BACKEND=jax. Several hosts: set JAX_COORDINATOR_ADDRESS, "
                                "JAX_NUM_PROCESSES, JAX_PROCESS_ID. On --resume: may change."),
    global_batch: int | None = typer.Option(default("global_batch"), "--global-batch", help="Images per step "
                                               "over all devices (default --batch-size x devices; must divide "
                                               "over them)."),
    lr_scaling: str = typer.Option(default("lr_scaling"), "--lr-scaling", help=f"{_one_of(LR_SCALINGS)}: "
                                   "linear multiplies --lr by global batch / --batch-size (--lr is the rate for "
                                   "a batch of --batch-size images)."),
    precision: str = typer.Option(default("precision"), "--precision", help=f"{_one_of(PRECISIONS)}: a Keras "
                                  "dtype policy (auto follows --mixed-precision). Mixed needs a GPU on "
                                  "TensorFlow."),
    loader_workers: int = typer.Option(default("loader_workers"), "--loader-workers", help="Threads producing "
                                       "augmented batches (0: one per CPU core; batches are the same for any "
                                       "count). On --resume: may change."),
    no_tensorboard: bool = typer.Option(not default("tensorboard"), "--no-tensorboard", help="Do not write "
                                        "TensorBoard logs."),
    overwrite: bool = typer.Option(default("overwrite"), "--overwrite", help="Replace an existing run "
                                   "directory's results."),
) -> None:
    """Train a classifier and write a complete run directory (model, manifest, split, metrics, plots)."""
    from edgemri.errors import UsageError

    if recipe is not None and resume is not None:
        raise UsageError("--recipe and --resume do not go together", "A resumed run keeps its config.json "
                         "(which records its recipe and every resolved value)")
    if holdout and final_fit is None:
        raise UsageError("--holdout goes with --final-fit", "Hold out validation images of a selection run: "
                         "edgemri train --final-fit RUN --holdout 0.5")
    if final_fit is not None:
        if recipe is not None or resume is not None:
            raise UsageError("--final-fit takes its recipe from the run it refits: not with --recipe or --resume",
                             "Resume an interrupted final fit with --resume OUT")
        cfg = _final_fit_config(final_fit, out, epochs)
        cfg.final_holdout = holdout
        for name, value in (("devices", devices), ("loader_workers", loader_workers), ("overwrite", overwrite),
                            ("tensorboard", not no_tensorboard), ("image_size", image_size)):
            if _given("no_tensorboard" if name == "tensorboard" else name):
                setattr(cfg, name, value)
        _check_before_frameworks(cfg)
        _run(cfg)
        return
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
        for name, value in (("devices", devices), ("loader_workers", loader_workers)):
            if _given(name):  # the hardware may differ from the first run's; the global batch stays
                setattr(cfg, name, value)
        _check_before_frameworks(cfg)
        _run(cfg, resume=True)
        return
    arch_options = _parse_opts(arch_opt)
    chosen = _load_recipe(recipe)  # a bad recipe fails here, before --data or Keras
    if chosen is None:
        MODELS.get(arch).resolve_options(arch_options)  # unknown name/option: one line, before --data or Keras
    if data is None:
        raise UsageError("--data is required", "Pass the dataset root, e.g. --data ../shared/datasets/busi/train")
    overrides = {"hflip": False if no_flip else None, "vflip": True if vflip else None, "rotation": rotation,
                 "zoom": zoom, "shift": shift, "shear": shear, "brightness": brightness, "contrast": contrast,
                 "brightness_mode": brightness_mode, "crop_scale": crop_scale}
    cfg = TrainConfig(
        arch=arch, data=str(data), out=str(out or Path("runs") / arch), arch_options=arch_options,
        task=task, image_size=image_size, batch_size=batch_size, lr=lr, seed=seed,
        val_fraction=val_fraction, test_fraction=test_fraction, group_pattern=group_pattern, skip_bad=skip_bad,
        group_duplicates=group_duplicates, merge=list(merge),
        augment=augment, augment_overrides={k: v for k, v in overrides.items() if v is not None},
        optimizer=optimizer, weight_decay=weight_decay, schedule=schedule, warmup_epochs=warmup_epochs,
        patience=patience, monitor=monitor, class_weights=not no_class_weights,
        label_smoothing=label_smoothing, mixup=mixup, cutmix=cutmix, ema=ema,
        precise_bn=precise_bn, mixed_precision=mixed_precision, devices=devices, global_batch=global_batch,
        lr_scaling=lr_scaling, precision=precision, loader_workers=loader_workers,
        weights=str(weights) if weights else None, freeze_epochs=freeze_epochs, fine_tune_layers=fine_tune_layers,
        fine_tune_lr_factor=fine_tune_lr_factor, tensorboard=not no_tensorboard, overwrite=overwrite,
        **({} if epochs is None else {"epochs": epochs}), **parse_cv_fold(cv_fold_spec),
    )
    if chosen is not None:
        cfg = _apply_recipe(chosen, cfg)
    _check_before_frameworks(cfg)
    _run(cfg)


# -- recipes (train/recipes.py): the flags a user typed override the recipe, defaults never do ------
#: train_command parameters that set a TrainConfig field of another name (the rest share the name;
#: the augmentation knobs and --arch-opt fill tables that merge key by key anyway).
_PARAM_FIELDS = {"arch_opt": "arch_options", "no_class_weights": "class_weights", "no_tensorboard": "tensorboard"}


def _final_fit_config(selection: Path, out: Path | None, epochs: int | None) -> TrainConfig:
    """The selection run's config, retargeted: train + val for a fixed epoch count, into a new run.

    The epoch count is the selection run's (its whole schedule: a cosine decay cut at the best
    epoch is another schedule); no best-epoch restore and no early stopping, since the
    validation images are now training images.
    """
    import json

    from edgemri.errors import UsageError

    hint = "Pass the --out of a finished edgemri train that held out a test split (--test-fraction)"
    paths = {name: selection / f"{name}.json" for name in ("config", "split", "metrics")}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise UsageError(f"{selection} is not a finished run ({', '.join(missing)} missing)", hint)
    try:
        saved, split, metrics = (json.loads(p.read_text(encoding="utf-8")) for p in paths.values())
    except ValueError as exc:
        raise UsageError(f"{selection}: unreadable run files ({exc})", hint) from exc
    if saved.get("final_fit"):
        raise UsageError(f"{selection} is itself a final fit", f"Refit its selection run {saved['final_fit']}")
    if not (split.get("counts") or {}).get("test"):
        raise UsageError(f"{selection} has no test split: a final fit would have nothing untouched to evaluate on",
                         hint)
    cfg = TrainConfig.from_dict(saved)
    cfg.out = str(out or selection.with_name(selection.name + "-final"))
    cfg.final_fit = str(selection.resolve())
    cfg.epochs = epochs or int(metrics.get("epochs_trained") or cfg.epochs)
    cfg.restore_best, cfg.patience, cfg.overwrite = False, 0, False
    return cfg


def _load_recipe(ref: str | None) -> Any:
    if ref is None:
        return None
    from edgemri.train import recipes

    return recipes.load(ref)


def _typed_params() -> set[str] | None:
    """Names of the options typed on the command line (or set from the environment), not defaulted;
    None when the command function is called directly, outside a click context."""
    try:  # recent typer releases vendor click as typer._click; older ones use click itself
        from typer._click.globals import get_current_context
    except ImportError:
        from click import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return None
    given = {"COMMANDLINE", "ENVIRONMENT", "PROMPT"}  # ParameterSource names: not DEFAULT / DEFAULT_MAP
    return {name for name in ctx.params if getattr(ctx.get_parameter_source(name), "name", None) in given}


def _typed_fields(cfg: TrainConfig) -> set[str]:
    """TrainConfig fields whose option was given on the command line (or the environment), not defaulted."""
    typed = _typed_params()
    if typed is None:  # called as a plain function: what differs from the defaults was given
        blank = TrainConfig(arch=DEFAULT_ARCH, data=cfg.data, out=cfg.out).to_dict()
        return {k for k, v in cfg.to_dict().items() if v != blank[k]}
    return {_PARAM_FIELDS.get(name, name) for name in typed}


def _apply_recipe(chosen: Any, cfg: TrainConfig) -> TrainConfig:
    from edgemri.train import recipes

    return TrainConfig.from_dict(recipes.apply(chosen, cfg.to_dict(), _typed_fields(cfg)))


def recipes_command(
    name: str | None = typer.Argument(None, help="A recipe to show in full (its TOML file)."),
) -> None:
    """List the packaged training recipes, one line each (edgemri train --recipe NAME)."""
    from edgemri.train import recipes

    if name is not None:
        chosen = recipes.load(name)
        typer.echo(f"# {chosen.path}\n{chosen.text}", nl=False)
        return
    typer.echo(f"{'recipe':<28} {'arch':<15} {'size':>6} {'epochs':>7}  what")
    for entry in recipes.registry().entries():
        typer.echo(entry.summary())


def _given(name: str) -> bool:
    """Whether option ``name`` was typed (not defaulted): what --resume may change."""
    return name in (_typed_params() or set())


def _check_before_frameworks(cfg: TrainConfig) -> None:
    """Fail on a bad option in milliseconds: the trainer imports Keras (and TensorFlow) first."""
    cfg.validate()
    MODELS.get(cfg.arch).resolve_options(cfg.arch_options)


def _run(cfg: TrainConfig, resume: bool = False) -> None:
    from edgemri.train.trainer import train

    run = train(cfg, resume=resume)
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
    app.command("recipes")(recipes_command)
