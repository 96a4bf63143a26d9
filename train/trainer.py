"""``train(cfg) -> RunDir``: data -> split -> cached arrays -> model -> epochs -> a complete run dir.

The loop runs one ``fit`` epoch at a time so that everything around it is ours and resumable:
the learning rate is set per epoch, validation is measured by ``predict`` (inference mode, the
mode the exported model runs in), early stopping and the plateau schedule keep their state in
``checkpoint/state.json``, and ``checkpoint/`` is swapped in atomically after every epoch
(model + optimizer + epoch + schedule/early-stopping/RNG state), so ``--resume`` loses no epoch.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edgemri.atomic import atomic_dir, atomic_path, write_json, write_text
from edgemri.errors import DataError, RunError, UsageError
from edgemri.extras import available, require
from edgemri.rundir import RunDir
from edgemri.runtime.manifest import InputSpec, Manifest, tool_versions
from edgemri.train import distribute
from edgemri.train.config import TrainConfig

Log = Callable[[str], None]
STATE_FILE = "state.json"
LAST_MODEL = "last.keras"
BEST_WEIGHTS = "best.weights.h5"
HISTORY_FIELDS = ("epoch", "phase", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "img_per_s",
                  "devices")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train(cfg: TrainConfig, resume: bool = False, verbose: int | None = None, log: Log = _stderr) -> RunDir:
    """Train per ``cfg`` into ``cfg.out``; with ``resume`` continue the run there at its next epoch.

    On several devices or processes (``cfg.devices``, the JAX cluster variables) the same steps run
    data-parallel under keras.distribution (train/distribute.py); only process 0 writes ``cfg.out``.
    """
    cfg.validate()
    from edgemri.train.models import MODELS, default_options

    entry = MODELS.get(cfg.arch)  # names and options are checked before any framework loads
    if cfg.image_size < entry.min_size:  # before any data is read or anything written
        raise UsageError(f"--image-size {cfg.image_size} is below the minimum {entry.min_size}px of {cfg.arch}",
                         f"Use --image-size {entry.min_size} or more")
    cfg.arch_options = entry.resolve_options({**default_options(cfg.arch), **cfg.arch_options})
    keras = require("keras", "train", "training")
    plan = _plan(keras, cfg, resume, log)  # devices, batch, precision: refused before anything is written
    log = distribute.process_log(log, plan)
    if plan.distributed:
        log(plan.describe())
    with distribute.activated(keras, plan), distribute.process_config(cfg, plan, resume) as local:
        _train(keras, local, plan, resume, verbose if plan.writer else 0, log)
    return RunDir(Path(cfg.out))


def _plan(keras: Any, cfg: TrainConfig, resume: bool, log: Log) -> distribute.Plan:
    saved_path = Path(cfg.out) / "config.json"
    saved = json.loads(saved_path.read_text()) if resume and saved_path.is_file() else None
    distribute.init_multihost(keras)  # first: asking JAX for its devices starts its backend
    gpu = _on_gpu(keras)
    plan = distribute.make_plan(keras, cfg, gpu, saved)
    if cfg.precision == "auto" and cfg.mixed_precision == "on" and not gpu:
        log("mixed precision requested but no GPU found: training in float32")
    return plan


def _train(keras: Any, cfg: TrainConfig, plan: distribute.Plan, resume: bool, verbose: int | None,
           log: Log) -> RunDir:
    """Every process runs this same program (JAX is multi-controller); ``cfg.out`` is this process's."""
    run, data_split, state = (_open_resume(cfg, plan) if resume else _create_run(cfg, plan))
    spec = InputSpec(height=cfg.image_size, width=cfg.image_size, channels=3, color=cfg.color)
    arrays = _load_arrays(data_split, spec, cfg)
    _check_train_classes(arrays["train"][1], data_split.classes)

    keras.mixed_precision.set_global_policy(plan.precision)
    start = int(state.get("next_epoch", 0))
    keras.utils.set_random_seed(cfg.seed + start)  # weights init / dropout; data order is per-epoch seeded
    distribute.barrier(keras, "edgemri-model")  # the model's variables are the first collective
    model = (_load_checkpoint(keras, run) if resume else
             _new_model(keras, cfg, spec, len(data_split.classes)))
    loop = _EpochLoop(keras, cfg, plan, run, model, arrays, spec, state, verbose, log)
    loop.fit_epochs(start)
    return _finish(keras, cfg, run, loop.model, data_split, arrays, spec, loop.state, log)


# -- run directory -------------------------------------------------------------------------------
def dataset_index(cfg: TrainConfig) -> Any:
    """The dataset as training sees it: discovered, then with ``--merge`` classes applied."""
    from edgemri.data.discover import discover, merge_classes, parse_merges

    return merge_classes(discover(cfg.data), parse_merges(cfg.merge))


def _create_run(cfg: TrainConfig, plan: distribute.Plan) -> tuple[RunDir, Any, dict[str, Any]]:
    from edgemri.data.split import make_split

    if cfg.final_fit:
        from edgemri.data.split import Split

        data_split = Split.load(Path(cfg.final_fit) / "split.json")  # the selection run's: same test images
        if cfg.final_holdout:
            data_split = holdout_split(data_split, cfg.final_holdout, cfg.seed)
        root, classes = data_split.root, list(data_split.classes)
    else:
        index = dataset_index(cfg)
        _check_index(index)
        groups = None
        if cfg.group_duplicates:
            from edgemri.data.audit import duplicate_groups

            groups = duplicate_groups(index, progress=True)
        data_split = make_split(index, cfg.val_fraction, cfg.test_fraction, cfg.seed, cfg.group_pattern,
                                groups=groups, folds=cfg.cv_folds, fold=cfg.cv_fold)
        root, classes = index.root, list(index.classes)
    if not data_split.samples("val"):
        raise UsageError("the validation split is empty", "Use --val-fraction > 0 or a dataset with a val/ folder")
    run = RunDir.create(cfg.out, overwrite=cfg.overwrite)
    if cfg.overwrite:
        _clear_run(run)
    data_split.save(run.split_path)
    write_json(run.config_path, {**cfg.to_dict(), "data": str(root), "classes": classes,
                                 "distribution": plan.record()})
    return run, data_split, {}


def holdout_split(split: Any, fraction: float, seed: int) -> Any:
    """A final fit's split: ``fraction`` of ``split``'s val stays val, the rest of val joins train.

    Stratified by class with at least one image per class kept out, and exact duplicates (same
    sha256) move together, so the held-out slice never holds a copy of a training image; test is
    untouched. Near-duplicates were already grouped into one split when the selection run's split
    was made, so they cannot straddle train and test here either.
    """
    import dataclasses
    from collections import defaultdict

    by_class: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for e in split.entries:
        if e.split == "val":
            by_class[e.label][e.sha256].append(e)
    keep: set[int] = set()
    for ci, label in enumerate(sorted(by_class)):
        groups = [by_class[label][h] for h in sorted(by_class[label])]
        order = np.random.default_rng([seed, ci, 7]).permutation(len(groups))
        want, taken = max(1, round(fraction * sum(len(g) for g in groups))), 0
        for i in order:
            if taken >= want:
                break
            keep.update(id(e) for e in groups[i])
            taken += len(groups[i])
    entries = [e if e.split != "val" or id(e) in keep else dataclasses.replace(e, split="train")
               for e in split.entries]
    return dataclasses.replace(split, entries=entries)


def _check_index(index: Any) -> None:
    counts = index.counts()
    if len(index.classes) < 2:
        raise DataError(f"{index.root} has {len(index.classes)} class folder(s); a classifier needs at least 2",
                        "Put each class in its own folder: ROOT/<class>/<image>")
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise DataError(f"class folder(s) {', '.join(empty)} under {index.root} hold no images",
                        "Remove the empty folders or add images")


def _clear_run(run: RunDir) -> None:
    """--overwrite: remove what a previous run wrote (only the run's own names, never other files)."""
    names = ("model.keras", "manifest.json", "split.json", "config.json", "history.csv", "metrics.json",
             "confusion_matrix.png", "curves.png", "checkpoint", "logs", "qat", "export", "bench", "evaluate")
    for name in names:
        path = run.root / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _open_resume(cfg: TrainConfig, plan: distribute.Plan) -> tuple[RunDir, Any, dict[str, Any]]:
    from edgemri.data.split import Split

    run = RunDir(Path(cfg.out))
    state_path = run.checkpoint_dir / STATE_FILE
    if not state_path.is_file() or not (run.checkpoint_dir / LAST_MODEL).is_file():
        raise RunError(f"{run.root} has no checkpoint to resume from",
                       "Start a new run with edgemri train --out DIR (a checkpoint is written after each epoch)")
    state = json.loads(state_path.read_text())
    saved = run.config()
    _check_resume_labels(cfg, saved)
    data_split = Split.load(run.split_path, root=cfg.data if cfg.data != saved.get("data") else None)
    if list(data_split.classes) != list(saved.get("classes", data_split.classes)):
        raise DataError(f"the classes of {run.split_path} differ from the run's config.json")
    # extending a finished run records the new target; resuming on other devices, the new plan
    updated = {**saved, "epochs": max(cfg.epochs, saved.get("epochs", cfg.epochs)), "distribution": plan.record()}
    if updated != saved:
        write_json(run.config_path, updated)
    return run, data_split, state


def _check_resume_labels(cfg: TrainConfig, saved: dict[str, Any]) -> None:
    """Resuming against a dataset whose class folders differ from the run's is a user error."""
    if cfg.data == saved.get("data") or not Path(cfg.data).is_dir():
        return
    classes = dataset_index(cfg).classes
    if list(classes) != list(saved["classes"]):
        raise DataError(f"{cfg.data} has classes {classes} but the run was trained on {saved['classes']}",
                        "Resume with the original dataset, or start a new run")


# -- data -----------------------------------------------------------------------------------------
def _load_arrays(data_split: Any, spec: InputSpec, cfg: TrainConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Decode and resize every image once (uint8, at the manifest's input spec)."""
    from edgemri.data.loader import load_samples

    out = {}
    for name in ("train", "val", "test"):
        samples = data_split.samples(name)
        if samples:
            out[name] = load_samples(samples, spec, data_split.classes, skip_bad=cfg.skip_bad, progress=True)
    if cfg.final_fit and not cfg.final_holdout:  # train + val; val stays for the per-epoch log (seen in training)
        out["train"] = tuple(np.concatenate([out["train"][i], out["val"][i]]) for i in range(2))
    return out


def _check_train_classes(labels: np.ndarray, classes: list[str]) -> None:
    counts = np.bincount(labels, minlength=len(classes))
    missing = [c for c, n in zip(classes, counts) if n == 0]
    if missing:
        raise DataError(f"the training split has no images of class(es) {', '.join(missing)}",
                        "Add images or lower --val-fraction/--test-fraction")


# -- model ----------------------------------------------------------------------------------------
def _on_gpu(keras: Any) -> bool:
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU"))
        if backend == "jax":
            import jax

            return jax.default_backend() == "gpu"
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken GPU stack means: train on CPU
        return False
    return False


def _make_optimizer(keras: Any, cfg: TrainConfig, lr: float) -> Any:
    wd = cfg.weight_decay if cfg.weight_decay > 0 else None
    ema = {"use_ema": True, "ema_momentum": cfg.ema} if cfg.ema > 0 else {}
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=wd or 0.0, **ema)
    return keras.optimizers.Adam(learning_rate=lr, weight_decay=wd, **ema)


def _keep_raw_weights(optimizer: Any) -> Any:
    """Stop ``fit`` from overwriting the weights with their average when it ends (Keras does that
    at the end of every ``fit``, and we call ``fit`` once per epoch: training would restart from
    the average each epoch). ``_EMA`` swaps the average in where it is wanted instead."""
    if optimizer is not None and getattr(_inner(optimizer), "use_ema", False):
        optimizer.finalize_variable_values = lambda var_list: None
    return optimizer


def _inner(optimizer: Any) -> Any:
    return getattr(optimizer, "inner_optimizer", optimizer)  # under a LossScaleOptimizer (mixed precision)


class _EMA:
    """``with _EMA(model):`` the model holds the averaged weights; afterwards its raw weights again.

    A no-op for an optimizer without ``use_ema``. BatchNorm moving statistics are not averaged (not
    trainable): PreciseBN re-estimates them inside the block, for the averaged weights.
    """

    def __init__(self, model: Any):
        self.model = model
        self.optimizer = _inner(model.optimizer) if model.optimizer is not None else None
        self.raw: list[np.ndarray] | None = None

    def __enter__(self) -> None:
        self.swap_in()

    def swap_in(self) -> None:
        """Put the averaged weights into the model (kept there unless the ``with`` block ends)."""
        averages = getattr(self.optimizer, "_model_variables_moving_average", None)  # None: not built yet
        if getattr(self.optimizer, "use_ema", False) and averages:
            variables = self.model.trainable_variables
            self.raw = [np.array(v) for v in variables]
            self.optimizer._overwrite_model_variables_with_average_value(variables)

    def __exit__(self, *exc: object) -> None:
        if self.raw is not None:
            for variable, value in zip(self.model.trainable_variables, self.raw):
                variable.assign(value)
            self.raw = None


def _compile(keras: Any, model: Any, cfg: TrainConfig, lr: float) -> None:
    """Sparse cross-entropy on class indices; on one-hot targets when smoothing or mixing them."""
    if cfg.soft_labels:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
        metric: Any = keras.metrics.CategoricalAccuracy(name="accuracy")  # history keeps the key "accuracy"
    else:
        loss, metric = "sparse_categorical_crossentropy", "accuracy"
    model.compile(optimizer=_keep_raw_weights(_make_optimizer(keras, cfg, lr)), loss=loss, metrics=[metric])


def _new_model(keras: Any, cfg: TrainConfig, spec: InputSpec, n_classes: int) -> Any:
    from edgemri.train.models import build
    from edgemri.train.models.common import load_pretrained

    model = build(cfg.arch, (spec.height, spec.width, spec.channels), n_classes, keras=keras, **cfg.arch_options)
    if cfg.weights:
        load_pretrained(model, cfg.weights)
    return model


def _load_checkpoint(keras: Any, run: RunDir) -> Any:
    path = run.checkpoint_dir / LAST_MODEL
    try:
        model = keras.models.load_model(path, safe_mode=True, compile=True)
    except Exception as exc:
        raise RunError(f"cannot load checkpoint {path}: {type(exc).__name__}: {str(exc)[:200]}",
                       "Start a new run; the checkpoint is damaged") from exc
    _keep_raw_weights(model.optimizer)
    return model


def _phase(cfg: TrainConfig, epoch: int) -> int:
    """0: backbone frozen (head only); 1: fine-tune (all, or the last N layers); 2: plain training."""
    if cfg.freeze_epochs > 0 and epoch < cfg.freeze_epochs:
        return 0
    if cfg.freeze_epochs > 0 or cfg.fine_tune_layers is not None:
        return 1
    return 2


# -- the epoch loop ------------------------------------------------------------------------------
class _EpochLoop:
    """One fit epoch at a time + inference-mode validation + checkpoint; all state in ``self.state``."""

    def __init__(self, keras: Any, cfg: TrainConfig, plan: distribute.Plan, run: RunDir, model: Any, arrays: dict,
                 spec: InputSpec, state: dict[str, Any], verbose: int | None, log: Log):
        from edgemri.data.weights import class_weights
        from edgemri.train.augment import preset
        from edgemri.train.dataset import make_train_dataset
        from edgemri.train.schedule import LrSchedule

        self.keras, self.cfg, self.run, self.model, self.spec, self.log = keras, cfg, run, model, spec, log
        self.plan = plan
        self.arrays = arrays
        self.state = {"next_epoch": 0, "phase": None, "history": [], "stopped": False,
                      "early": {"best": None, "best_epoch": None, "wait": 0}, "schedule": None, **state}
        self.verbose = verbose if verbose is not None else (1 if sys.stdout.isatty() else 2)
        px, y = arrays["train"]
        weights = class_weights(y, len(run.config()["classes"])) if cfg.class_weights else None
        aug = preset(cfg.augment).with_overrides(**cfg.augment_overrides)
        self.dataset = make_train_dataset(px, y, spec, plan.global_batch, aug, cfg.seed, weights,
                                          shard=(plan.process_id, plan.processes), replicas=len(plan.devices),
                                          workers=plan.loader_workers,
                                          classes=len(run.config()["classes"]) if cfg.soft_labels else None,
                                          mixup=cfg.mixup, cutmix=cfg.cutmix)
        self.schedule = LrSchedule(cfg.schedule, cfg.lr * plan.lr_scale, cfg.epochs, cfg.warmup_epochs, cfg.min_lr_factor,
                                   cfg.plateau_factor, cfg.plateau_patience, self.state["schedule"])
        self.tb = _TensorBoard(run.logs_dir, log) if cfg.tensorboard else None

    def fit_epochs(self, start: int) -> None:
        if self.state["stopped"] and start < self.cfg.epochs:
            self.state["stopped"] = False  # resuming a run that stopped early with more epochs requested
        for epoch in range(start, self.cfg.epochs):
            if self._one_epoch(epoch):
                self.log(f"early stopping after epoch {epoch + 1}: no {self.cfg.monitor} improvement "
                         f"for {self.cfg.patience} epochs (best epoch {self.state['early']['best_epoch']})")
                break

    def _enter_phase(self, epoch: int, lr: float) -> None:
        from edgemri.train.models.common import set_backbone_trainable

        phase = _phase(self.cfg, epoch)
        if phase == self.state["phase"] and self.model.optimizer is not None:
            return
        if phase == 0:
            set_backbone_trainable(self.model, 0)
        elif phase == 1:
            set_backbone_trainable(self.model, self.cfg.fine_tune_layers)
        _compile(self.keras, self.model, self.cfg, lr)
        self.state["phase"] = phase

    def _lr(self, epoch: int) -> float:
        lr = self.schedule.lr_for(epoch)
        return lr * self.cfg.fine_tune_lr_factor if _phase(self.cfg, epoch) == 1 else lr

    def _one_epoch(self, epoch: int) -> bool:
        """Train, validate, checkpoint one epoch; True when early stopping says stop."""
        lr = self._lr(epoch)
        self._enter_phase(epoch, lr)
        self.model.optimizer.learning_rate = lr
        self.dataset.set_epoch(epoch)
        t0 = time.perf_counter()
        # epochs=cfg.epochs so Keras' progress bar says "Epoch e/E"; the callback ends fit after one.
        # shuffle=False: the dataset permutes itself per (seed, epoch); Keras' shuffle of a PyDataset's
        # batch order draws from Python's global random state, which a resumed run does not reproduce.
        fit = self.model.fit(self.dataset, epochs=self.cfg.epochs, initial_epoch=epoch, verbose=self.verbose,
                             callbacks=[_one_epoch_only(self.keras)], shuffle=False)
        img_per_s = self.dataset.images / max(time.perf_counter() - t0, 1e-9)  # the first epoch includes JIT
        with _EMA(self.model):  # --ema: BN statistics and validation are those of the averaged weights
            if self.cfg.precise_bn:
                from edgemri.train.precise_bn import recalibrate_bn

                # the global batch: the statistics one device would see, whatever the device count
                recalibrate_bn(self.model, self.arrays["train"][0], self.spec, self.plan.global_batch,
                               self.cfg.precise_bn, seed=self.cfg.seed + epoch)
            val_loss, val_acc = self._validate()
        row = {"epoch": epoch + 1, "phase": self.state["phase"], "lr": lr,
               "loss": float(fit.history["loss"][-1]), "accuracy": float(fit.history["accuracy"][-1]),
               "val_loss": val_loss, "val_accuracy": val_acc, "seconds": round(time.perf_counter() - t0, 2),
               "img_per_s": round(img_per_s, 1), "devices": len(self.plan.devices)}
        self.state["history"].append(row)
        self.log(f"epoch {epoch + 1}/{self.cfg.epochs}: lr {lr:.3g}  loss {row['loss']:.4f} "
                 f"acc {row['accuracy']:.4f}  val_loss {val_loss:.4f} val_acc {val_acc:.4f}  "
                 f"({row['seconds']:.0f}s, {row['img_per_s']:.0f} img/s)")
        improved = self._track_best(epoch, row)
        self.schedule.after_epoch(epoch, val_loss)
        self.state["schedule"] = self.schedule.state
        self.state["next_epoch"] = epoch + 1
        stop = self.cfg.patience > 0 and self.state["early"]["wait"] >= self.cfg.patience
        self.state["stopped"] = stop
        self._checkpoint(improved)
        if self.tb:
            self.tb.write(epoch + 1, row)
        return stop

    def _validate(self) -> tuple[float, float]:
        from edgemri.train.keras_model import predict_probs

        px, y = self.arrays["val"]
        probs = predict_probs(self.model, px, self.spec, batch_size=max(32, self.cfg.batch_size))
        p_true = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
        return float(-np.log(p_true).mean()), float((probs.argmax(1) == y).mean())

    def _track_best(self, epoch: int, row: dict[str, Any]) -> bool:
        early = self.state["early"]
        value = row[self.cfg.monitor]
        sign = 1.0 if self.cfg.monitor == "val_loss" else -1.0
        if early["best"] is None or sign * value < sign * early["best"] - 1e-6:
            early.update(best=value, best_epoch=epoch + 1, wait=0)
            return True
        early["wait"] += 1
        return False

    def _checkpoint(self, improved: bool) -> None:
        """Swap in a complete checkpoint/ (model + optimizer, best weights, state) atomically."""
        old_best = self.run.checkpoint_dir / BEST_WEIGHTS
        with atomic_dir(self.run.checkpoint_dir) as tmp:
            self.model.save(tmp / LAST_MODEL)
            if improved:
                with _EMA(self.model):  # the weights that were validated
                    self.model.save_weights(tmp / BEST_WEIGHTS)
            elif old_best.is_file():
                shutil.copy2(old_best, tmp / BEST_WEIGHTS)
            state = {**self.state, "rng": {"seed": self.cfg.seed, "data_order": "numpy default_rng([seed, epoch])",
                                           "keras_seed": self.cfg.seed + self.state["next_epoch"]}}
            write_json(tmp / STATE_FILE, state)
        _write_history(self.run.history_path, self.state["history"])


def _one_epoch_only(keras: Any) -> Any:
    class OneEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.model.stop_training = True

    return OneEpoch()


class _TensorBoard:
    """Epoch scalars via tf.summary, only when TensorFlow and TensorBoard are installed (optional)."""

    def __init__(self, logdir: Path, log: Log):
        self.writer = None
        if not (available("tensorflow") and available("tensorboard")):
            log("TensorBoard logs off (install tensorflow + tensorboard for them); history.csv has the same")
        else:
            import tensorflow as tf

            self.tf = tf
            self.writer = tf.summary.create_file_writer(str(logdir))

    def write(self, step: int, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        with self.writer.as_default():
            for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
                self.tf.summary.scalar(key, row[key], step=step)
        self.writer.flush()


def _write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k) for k in HISTORY_FIELDS})
    write_text(path, buf.getvalue())


# -- the finished run ----------------------------------------------------------------------------
def _finish(keras: Any, cfg: TrainConfig, run: RunDir, model: Any, data_split: Any, arrays: dict,
            spec: InputSpec, state: dict[str, Any], log: Log) -> RunDir:
    """Best weights -> float32 model.keras, manifest, metrics on val (and test), plots."""
    from edgemri.metrics import classification_report
    from edgemri.plots import save_confusion_matrix, save_curves
    from edgemri.train.keras_model import predict_probs

    best = run.checkpoint_dir / BEST_WEIGHTS
    if cfg.restore_best and best.is_file():
        model.load_weights(best)
        log(f"restored the best weights (epoch {state['early']['best_epoch']}, "
            f"{cfg.monitor} {state['early']['best']:.4f})")
    else:
        _EMA(model).swap_in()  # --ema: ship the last epoch's average (a no-op without it)
    model = _deployable(keras, cfg, model, spec, len(data_split.classes))
    with atomic_path(run.model) as tmp:
        model.save(tmp)
    classes = list(data_split.classes)
    manifest = Manifest(task=cfg.task_name, classes=tuple(classes), input=spec, arch=cfg.arch, format="keras",
                        provenance=_provenance(keras, run, data_split),
                        extra={"arch_options": cfg.arch_options})
    manifest.save(run.manifest_path)
    reports = {}
    for name in ("val", "test"):
        if name in arrays:
            px, y = arrays[name]
            reports[name] = classification_report(y, predict_probs(model, px, spec), classes)
    metrics = {**reports["val"], "split": "val", "epochs_trained": state["next_epoch"],
               "best_epoch": state["early"]["best_epoch"], "monitor": cfg.monitor}
    if "test" in reports:
        metrics["test"] = reports["test"]
    if cfg.final_fit:
        metrics["final_fit"] = {"of": cfg.final_fit, "val_in_training": not cfg.final_holdout,
                                "holdout": cfg.final_holdout,
                                "note": ("val is a held-out slice of the selection run's val (calibration, OOD "
                                         "threshold); test is the untouched split") if cfg.final_holdout else
                                        "val metrics are on training images; test is the untouched split"}
    write_json(run.metrics_path, metrics)
    save_confusion_matrix(np.array(reports["val"]["confusion_matrix"]), classes, run.root / "confusion_matrix.png",
                          title=f"{cfg.arch} - val accuracy {reports['val']['accuracy']:.3f}")
    save_curves(state["history"], run.root / "curves.png", title=cfg.arch)
    log(f"val accuracy {metrics['accuracy']:.4f}  balanced {metrics['balanced_accuracy']:.4f}  "
        f"macro F1 {metrics['macro_f1']:.4f}  -> {run.root}")
    if cfg.final_fit and not cfg.final_holdout:
        test = reports.get("test")
        log(f"final fit of {cfg.final_fit}: "
            + (f"test accuracy {test['accuracy']:.4f} (n={test['n']}); " if test else "no test split; ")
            + "not calibrated and no OOD guard (no held-out validation images to fit them on)")
        return run
    if cfg.final_fit:
        test = reports.get("test")
        log(f"final fit of {cfg.final_fit} ({cfg.final_holdout:.0%} of its val held out): "
            + (f"test accuracy {test['accuracy']:.4f} (n={test['n']})" if test else "no test split"))
    from edgemri.calibrate import after_training  # issue 17: temperature + OOD guard on val (owner H6)
    after_training(run, log)
    return run


def _deployable(keras: Any, cfg: TrainConfig, model: Any, spec: InputSpec, n_classes: int) -> Any:
    """The trained weights in a fresh, uncompiled float32 model: what model.keras ships.

    A mixed-precision model becomes float32 so conversion and the runtime see float32 graphs, and no
    optimizer state is saved: Adam's two moments would triple the file (resuming uses checkpoint/).
    """
    keras.mixed_precision.set_global_policy("float32")
    from edgemri.train.models import build

    clean = build(cfg.arch, (spec.height, spec.width, spec.channels), n_classes, keras=keras, **cfg.arch_options)
    clean.set_weights(model.get_weights())
    return clean


def _provenance(keras: Any, run: RunDir, data_split: Any) -> dict[str, Any]:
    stamp = datetime.now(timezone.utc)
    return {
        "run_id": f"{run.root.name}-{stamp:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
        "created": stamp.isoformat(timespec="seconds"),
        "dataset_fingerprint": data_split.fingerprint,
        "keras_backend": keras.backend.backend(),
        "tool_versions": tool_versions("keras", "tensorflow", "jax", "torch", "numpy"),
    }
