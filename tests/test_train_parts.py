"""Augmentation and LR schedules: the numpy pieces of training, without Keras."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgemri.errors import UsageError
from edgemri.train.augment import PRESETS, AugmentConfig, augment_batch, preset
from edgemri.train.schedule import LrSchedule, warmup_cosine


def _batch() -> np.ndarray:
    x = np.zeros((4, 24, 24, 3), np.uint8)
    x[:, 4:10, 2:8] = 200  # an off-centre square: flips and warps move it
    return x


def test_disabled_augmentation_is_identity():
    x = _batch()
    out = augment_batch(x, PRESETS["none"], np.random.default_rng(0))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x.astype(np.float32))


def test_flip_mirrors_and_identity_warp_keeps_pixels():
    x = _batch()
    out = augment_batch(x, AugmentConfig(hflip=True), np.random.default_rng(1))
    flipped = [np.array_equal(o, img[:, ::-1].astype(np.float32)) for o, img in zip(out, x)]
    kept = [np.array_equal(o, img.astype(np.float32)) for o, img in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped)
    near_identity = augment_batch(x, AugmentConfig(rotation=1e-6), np.random.default_rng(0))
    np.testing.assert_allclose(near_identity, x, atol=0.01)


def test_geometric_and_photometric_ranges():
    x = _batch()
    out = augment_batch(x, preset("mri"), np.random.default_rng(2))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255
    assert not np.allclose(out, x)
    again = augment_batch(x, preset("mri"), np.random.default_rng(2))
    np.testing.assert_array_equal(out, again)  # same seed, same batch: resumable
    shifted = augment_batch(x, AugmentConfig(shift=0.3), np.random.default_rng(3))
    assert shifted.sum() < x.sum() * 1.01 and shifted.sum() > 0  # zero fill, content preserved-ish


def test_overrides_and_unknown_preset():
    cfg = preset("ultrasound").with_overrides(hflip=False, rotation=0.0, zoom=None)
    assert (cfg.hflip, cfg.rotation, cfg.zoom) == (False, 0.0, PRESETS["ultrasound"].zoom)
    with pytest.raises(UsageError, match="unknown augmentation preset") as info:
        preset("ct")
    assert "mri" in info.value.hint


def test_warmup_cosine_shape():
    lrs = [warmup_cosine(e, 10, 1e-3, 2, 0.01) for e in range(10)]
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[2:]))
    assert lrs[-1] == pytest.approx(1e-5)


def test_plateau_halves_after_patience_and_state_round_trips():
    sched = LrSchedule("plateau", 1e-3, 10, 0, 0.01, plateau_factor=0.5, plateau_patience=2)
    for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.93]):
        sched.after_epoch(epoch, loss)
    assert sched.lr_for(4) == pytest.approx(5e-4)
    restored = LrSchedule("plateau", 1e-3, 10, 0, 0.01, state=dict(sched.state))
    assert restored.lr_for(4) == sched.lr_for(4)


def test_precise_bn_sets_statistics_to_the_clean_data_average():
    keras = pytest.importorskip("keras")
    from edgemri.runtime.manifest import InputSpec
    from edgemri.train.precise_bn import recalibrate_bn

    inputs = keras.layers.Input((8, 8, 3), name="input")
    bn = keras.layers.BatchNormalization(momentum=0.9, name="bn")
    model = keras.Model(inputs, bn(inputs))
    bn.moving_mean.assign(np.full(3, 50.0, np.float32))  # stale statistics
    spec = InputSpec(8, 8)
    pixels = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 3), dtype=np.uint8)
    used = recalibrate_bn(model, pixels, spec, batch_size=16, batches=4)
    assert used == 4 and bn.momentum == 0.9  # momentum restored
    x = spec.scale * pixels.astype(np.float64) + spec.offset
    np.testing.assert_allclose(bn.moving_mean.numpy(), x.mean(axis=(0, 1, 2)), atol=2e-3)


# -- one source of truth: CLI defaults and choices ------------------------------------------------
def _option_defaults() -> dict[str, object]:
    import inspect

    from edgemri.train.cli import train_command

    return {name: param.default.default for name, param in inspect.signature(train_command).parameters.items()}


def test_train_cli_defaults_are_train_config_defaults():
    import dataclasses

    from edgemri.train.config import DEFAULT_ARCH, TrainConfig, default

    options = _option_defaults()
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    compared = []
    for name, value in options.items():
        if name in fields and name not in ("arch", "data", "out", "epochs"):  # required, or None for --resume
            assert value == default(name), name
            compared.append(name)
        elif name.startswith("no_") and name[3:] in fields:  # --no-class-weights, --no-tensorboard
            assert value is (not default(name[3:])), name
            compared.append(name)
    assert {"optimizer", "lr", "batch_size", "precise_bn", "no_class_weights"} <= set(compared)
    assert options["arch"] == DEFAULT_ARCH and options["epochs"] is None
    assert default("optimizer") == "adamw" and TrainConfig("a", "d", "o").optimizer == "adamw"
    with pytest.raises(KeyError):
        default("arch")  # required: no default to hand out
    with pytest.raises(KeyError):
        default("no_such_option")


def test_train_help_lists_every_architecture_and_its_options():
    from edgemri.train.cli import _arch_help, _arch_opt_help
    from edgemri.train.models import MODELS

    arch_help, opt_help = _arch_help(), _arch_opt_help()
    for entry in MODELS.entries():
        assert f"{entry.name}: {entry.description}" in arch_help
        options = ", ".join(f"{k}={v}" for k, v in entry.defaults.items())
        assert f"{entry.name}: {options}" in opt_help


CLI_MODULES = """
import atexit, json, os, sys
atexit.register(lambda: print("MODULES" + json.dumps(sorted(sys.modules))))
from edgemri.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("argv, message", [
    (["train", "--arch", "mobilenetv3", "--data", "no-such-dir"],
     "unknown architecture 'mobilenetv3'. Did you mean \"mobilenetv2\"?"),
    (["train", "--arch", "simple-cnn", "--arch-opt", "alpha=1", "--data", "no-such-dir"],
     "unknown architecture option(s) alpha"),
    (["convert", "no-such-run", "-t", "tflite-in8"], 'unknown conversion target \'tflite-in8\'. Did you mean "tflite-int8"?'),
])
def test_unknown_names_are_one_line_before_any_framework_import(tmp_path, argv, message):
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", CLI_MODULES, *argv], capture_output=True, text=True, timeout=120,
                          check=False, cwd=tmp_path)
    err = proc.stderr.strip()
    assert proc.returncode == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err
    modules = json.loads(proc.stdout.split("MODULES", 1)[1])
    assert [m for m in modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "jax", "torch")] == []


SOFT_WEIGHTS = {0: 1.0, 1: 2.0, 2: 3.0}


def soft_batches(size: int, seed: int, **blend: float):
    """Batches of 6 from 12 random ``size`` px images of classes 0,1,2 with class weights 1,2,3, one-hot."""
    pytest.importorskip("keras")
    from edgemri.runtime.manifest import InputSpec
    from edgemri.train.augment import preset
    from edgemri.train.dataset import make_train_dataset

    px = np.random.default_rng(seed).integers(0, 256, (12, size, size, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2] * 4)
    return make_train_dataset(px, labels, InputSpec(height=size, width=size), 6, preset("none"), 0,
                              SOFT_WEIGHTS if blend.get("classes", 3) else None, **{"classes": 3, **blend})


def test_soft_label_batches_are_one_hot_and_mixup_blends_images_targets_and_weights():
    weights = SOFT_WEIGHTS
    plain = soft_batches(8, 0)
    plain.set_epoch(0)
    x0, y0, w0 = plain[0]
    assert y0.shape == (6, 3) and set(np.unique(y0)) == {0.0, 1.0}
    assert np.allclose(w0, [weights[int(k)] for k in y0.argmax(1)])

    mixed = soft_batches(8, 0, mixup=0.4)
    mixed.set_epoch(0)
    x1, y1, w1 = mixed[0]
    assert np.allclose(y1.sum(1), 1.0) and y1.max(1).min() >= 0.5  # the row's own class dominates
    assert not np.allclose(x1, x0) and not np.allclose(y1, y0)
    assert np.allclose(w1, y1 @ np.array([1.0, 2.0, 3.0]))  # weights blend like the targets
    lam = y1.max(1).min()  # the rows whose partner has another class carry lam itself
    assert 0.5 <= lam < 1.0
    # every mixed image is lam * own + (1 - lam) * another image of the batch, same lam for the batch
    partners = [(x1[i] - lam * x0[i]) / (1 - lam) for i in range(6)]
    assert all(min(np.abs(p - x0[j]).max() for j in range(6)) < 1e-4 for p in partners)
    again = soft_batches(8, 0, mixup=0.4)
    again.set_epoch(0)
    assert np.array_equal(again[0][0], x1)  # reproducible per (seed, epoch, batch): resume sees the same
    with pytest.raises(ValueError, match="one-hot"):
        soft_batches(8, 0, mixup=0.4, classes=0)


def test_cutmix_pastes_one_box_of_a_partner_and_blends_targets_by_its_area():
    plain = soft_batches(16, 1)
    plain.set_epoch(0)
    x0 = plain[0][0]
    cut = soft_batches(16, 1, cutmix=1.0)
    cut.set_epoch(0)
    x1, y1, w1 = cut[0]
    changed = np.any(x1 != x0, axis=(0, 3))  # (16, 16): where any image of the batch differs
    rows, cols = np.nonzero(changed)
    assert rows.size, "a box was pasted"
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    area = (box[0].stop - box[0].start) * (box[1].stop - box[1].start) / 256
    assert 0 < area <= 0.5  # at most half of the image: the row's own image dominates
    for i in range(6):  # outside the box: the image itself; inside: one partner's pixels, the same box for all
        outside = np.ones((16, 16), bool)
        outside[box] = False
        assert np.array_equal(x1[i][outside], x0[i][outside])
        assert any(np.array_equal(x1[i][box], x0[j][box]) for j in range(6))
    assert np.allclose(y1.sum(1), 1.0) and np.isclose(y1.max(1).min(), 1 - area, atol=1e-6)
    assert np.allclose(w1, y1 @ np.array([1.0, 2.0, 3.0]))
    both = soft_batches(16, 1, mixup=0.4, cutmix=1.0)
    kinds = set()
    for epoch in range(8):  # each batch is either pasted (some pixels untouched) or blended (all moved)
        both.set_epoch(epoch)
        plain.set_epoch(epoch)
        diff = np.any(both[0][0] != plain[0][0], axis=(0, 3))
        kinds.add("cutmix" if not diff.all() else "mixup")
    assert kinds == {"cutmix", "mixup"}
    with pytest.raises(ValueError, match="one-hot"):
        soft_batches(16, 1, cutmix=1.0, classes=0)


def test_cv_mcnemar_p_is_the_exact_two_sided_binomial_tail():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "cv.py"
    spec = importlib.util.spec_from_file_location("cv", path)
    cv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cv)
    assert cv.mcnemar_p(0, 0) == 1.0 and cv.mcnemar_p(5, 5) == 1.0
    assert abs(cv.mcnemar_p(1, 9) - 2 * 11 / 1024) < 1e-12 and cv.mcnemar_p(9, 1) == cv.mcnemar_p(1, 9)
    assert cv.mcnemar_p(0, 6) < 0.05 < cv.mcnemar_p(1, 5)
