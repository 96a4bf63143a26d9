"""Training end to end on tiny synthetic data: run directory, metrics, resume, refusals, backends."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

from edgemri.cli import main
from edgemri.errors import ModelFileError
from edgemri.rundir import RunDir

TINY = ["--arch", "simple-cnn", "--image-size", "32", "--batch-size", "8", "--seed", "0",
        "--arch-opt", "filters=8,16", "--augment", "mri", "--no-tensorboard"]


def _write_pngs(root: Path, classes: list[str], per_class: int, seed: int = 0) -> Path:
    """Class-dependent bright squares, so a tiny CNN has something learnable."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (40, 40), dtype=np.uint8)
            y, x = 4 + 9 * k, 4 + 9 * k
            img[y:y + 10, x:x + 10] = 230
            Image.fromarray(img).save(root / name / f"{name}_{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return _write_pngs(tmp_path_factory.mktemp("data") / "brain", ["glioma", "meningioma", "notumor"], 10)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> RunDir:
    out = tmp_path_factory.mktemp("runs") / "run"
    rc = main(["train", "--data", str(data), "--out", str(out), "--epochs", "2", "--test-fraction", "0.2",
               *TINY])
    assert rc == 0
    return RunDir.open(out)


def test_run_directory_is_complete(trained, data):
    names = {p.name for p in trained.root.iterdir()}
    assert {"model.keras", "manifest.json", "split.json", "config.json", "history.csv", "metrics.json",
            "confusion_matrix.png", "curves.png", "checkpoint"} <= names
    cfg = trained.config()
    for key in ("arch", "arch_options", "image_size", "color", "epochs", "batch_size", "lr", "seed", "data",
                "classes", "optimizer", "schedule", "augment", "patience"):
        assert key in cfg, key
    assert cfg["arch_options"] == {"filters": "8,16", "dropout": 0.2, "init": "glorot"}
    assert cfg["classes"] == ["glioma", "meningioma", "notumor"]
    manifest = trained.manifest()
    assert manifest.format == "keras" and manifest.arch == "simple-cnn"
    assert (manifest.input.height, manifest.input.color) == (32, "gray3")
    assert {"run_id", "dataset_fingerprint", "tool_versions"} <= set(manifest.provenance)
    assert manifest.provenance["dataset_fingerprint"] == json.loads(trained.split_path.read_text())["fingerprint"]
    rows = list(csv.DictReader(trained.history_path.open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for png in ("confusion_matrix.png", "curves.png"):
        assert (trained.root / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _weight_groups(trained.model) == {"layers", "vars"}  # ships weights, not Adam's moments
    assert "optimizer" in _weight_groups(trained.checkpoint_dir / "last.keras")  # resume keeps them


def _weight_groups(path: Path) -> set[str]:
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
        return set(h5.keys())


def test_metrics_match_an_independent_inference_mode_evaluation(trained):
    from edgemri.train.arrays import split_arrays
    from edgemri.train.keras_model import load_keras, predict_probs

    metrics = json.loads(trained.metrics_path.read_text())
    for key in ("accuracy", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1", "per_class",
                "confusion_matrix", "roc_auc", "ece", "test"):
        assert key in metrics, key
    pixels, labels = split_arrays(trained, "val", progress=False)
    probs = predict_probs(load_keras(trained.model), pixels, trained.manifest().input)
    assert len(labels) == metrics["n"] == np.sum(metrics["confusion_matrix"])
    assert metrics["accuracy"] == pytest.approx(float((probs.argmax(1) == labels).mean()))


def test_evaluate_command_on_a_labelled_folder(trained, data, capsys):
    assert main(["evaluate", str(trained.root), "--data", str(data)]) == 0
    assert "accuracy" in capsys.readouterr().out
    reports = list((trained.root / "evaluate").glob("*/metrics.json"))
    assert len(reports) == 1 and json.loads(reports[0].read_text())["n"] == 30


def test_refuses_to_overwrite_an_existing_run(trained, data, capsys):
    before = trained.model.stat().st_mtime_ns
    rc = main(["train", "--data", str(data), "--out", str(trained.root), "--epochs", "1", *TINY])
    assert rc != 0
    assert "already exists" in capsys.readouterr().err
    assert trained.model.stat().st_mtime_ns == before


def test_resume_continues_at_the_next_epoch(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(out), "--epochs", "1", *TINY]) == 0
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["next_epoch"] == 1
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "epoch 2/2:" in err and "epoch 1/" not in err  # only the missing epoch ran
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    import keras

    resumed = keras.models.load_model(out / "checkpoint" / "last.keras")
    steps_per_epoch = int(np.ceil(21 / 8))  # 30 images, 15% val -> 21 train (class-stratified, +-1)
    assert int(resumed.optimizer.iterations) >= 2 * (steps_per_epoch - 1)  # optimizer state carried over

    # a dataset whose classes differ from the run's is refused
    other = _write_pngs(tmp_path / "other", ["a", "b"], 3)
    assert main(["train", "--resume", str(out), "--data", str(other), "--epochs", "3"]) != 0
    assert "classes" in capsys.readouterr().err

    # --overwrite replaces the run: a stale export disappears, history restarts
    (out / "export").mkdir()
    (out / "export" / "stale.tflite").write_bytes(b"old")
    assert main(["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--overwrite", *TINY]) == 0
    assert not (out / "export").exists()
    assert [int(r["epoch"]) for r in csv.DictReader((out / "history.csv").open())] == [1]


def test_label_smoothing_and_mixup_train_resume_and_are_recorded(data, tmp_path, capsys):
    out = tmp_path / "soft"
    soft = ["--label-smoothing", "0.1", "--mixup", "0.3", "--cutmix", "1.0"]
    assert main(["train", "--data", str(data), "--out", str(out), "--epochs", "1", *soft, *TINY]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["label_smoothing"] == 0.1 and cfg["mixup"] == 0.3 and cfg["cutmix"] == 1.0
    import keras

    model = keras.models.load_model(out / "checkpoint" / "last.keras", safe_mode=True)
    assert model.loss.get_config()["label_smoothing"] == 0.1  # the loss that trained is the smoothed one
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 0
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and all(0 <= float(r["accuracy"]) <= 1 for r in rows)


def test_ema_validates_and_ships_the_average_while_training_continues_from_the_raw_weights(data, tmp_path):
    recipe = tmp_path / "ema.toml"  # restore_best off: model.keras is the last epoch's average
    recipe.write_text('[recipe]\ndescription = "ema"\n[train]\nema = 0.9\nrestore_best = false\n')
    out = tmp_path / "ema"
    assert main(["train", "--recipe", str(recipe), "--data", str(data), "--out", str(out), "--epochs", "2",
                 *TINY]) == 0
    assert json.loads((out / "config.json").read_text())["ema"] == 0.9
    import keras

    last = keras.models.load_model(out / "checkpoint" / "last.keras", safe_mode=True)
    shipped = keras.models.load_model(out / "model.keras", safe_mode=True)
    averages = [np.array(v) for v in last.optimizer._model_variables_moving_average]
    raw = [np.array(v) for v in last.trainable_variables]
    assert last.optimizer.use_ema and len(averages) == len(raw) == len(shipped.trainable_variables)
    for avg, got in zip(averages, shipped.trainable_variables):
        np.testing.assert_allclose(np.array(got), avg, rtol=1e-6, atol=1e-7)
    assert max(float(np.abs(a - r).max()) for a, r in zip(averages, raw)) > 1e-4  # the checkpoint keeps raw weights
    assert main(["train", "--resume", str(out), "--epochs", "3"]) == 0
    assert [int(r["epoch"]) for r in csv.DictReader((out / "history.csv").open())] == [1, 2, 3]


@pytest.mark.parametrize("argv, message", [
    (["--arch", "resnet9000"], "unknown architecture"),
    (["--arch", "simple-cnn", "--ema", "1"], "--ema must be in [0, 1)"),
    (["--arch", "simple-cnn", "--mixup", "-1"], "--mixup must be >= 0"),
    (["--arch", "simple-cnn", "--cutmix", "-1"], "--cutmix must be >= 0"),
    (["--arch", "simple-cnn", "--label-smoothing", "1"], "--label-smoothing must be in [0, 1)"),
    (["--arch", "mobilenetv2", "--image-size", "16"], "below the minimum"),
    (["--arch", "simple-cnn", "--arch-opt", "depth=3"], "unknown architecture option"),
    (["--arch", "simple-cnn", "--optimizer", "sgd"], "--optimizer must be one of"),
    (["--arch", "simple-cnn", "--cv-fold", "3/3"], "fold 3 of 3 is not a k-fold split"),
])
def test_bad_options_fail_with_one_line(data, tmp_path, capsys, argv, message):
    rc = main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--epochs", "1", *argv])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()  # nothing written


def test_final_fit_retrains_on_train_and_val_and_evaluates_on_the_same_test_split(trained, tmp_path, capsys):
    """--final-fit RUN: RUN's config and split, train + val for RUN's epoch count, test scored once."""
    from edgemri.data.split import Split
    from edgemri.runtime.manifest import InputSpec
    from edgemri.train.config import TrainConfig
    from edgemri.train.trainer import _load_arrays

    out = tmp_path / "final"
    capsys.readouterr()
    assert main(["train", "--final-fit", str(trained.root), "--out", str(out)]) == 0
    assert "final fit of" in capsys.readouterr().err
    selection, refit = Split.load(trained.split_path), Split.load(out / "split.json")
    assert refit.fingerprint == selection.fingerprint  # the same untouched test images
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["final_fit"] == str(trained.root.resolve()) and cfg["restore_best"] is False
    assert cfg["epochs"] == json.loads(trained.metrics_path.read_text())["epochs_trained"]
    assert {k: cfg[k] for k in ("arch", "arch_options", "image_size", "lr")} == \
        {k: trained.config()[k] for k in ("arch", "arch_options", "image_size", "lr")}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_fit"]["val_in_training"] is True and metrics["test"]["n"] == len(selection.samples("test"))
    assert not (out / "calibration.json").exists()  # nothing held out to fit a temperature on

    spec = InputSpec(height=32, width=32, channels=3, color="gray3")
    arrays = _load_arrays(refit, spec, TrainConfig.from_dict(cfg))
    assert len(arrays["train"][1]) == len(selection.samples("train")) + len(selection.samples("val"))

    assert main(["train", "--final-fit", str(out)]) != 0  # a final fit of a final fit
    assert "is itself a final fit" in capsys.readouterr().err


def test_final_fit_with_holdout_keeps_a_calibration_slice_out_of_training(trained, tmp_path, capsys):
    """--holdout F: F of RUN's val stays out (so the refit is calibrated), the rest of val trains, test untouched."""
    from edgemri.data.split import Split

    out = tmp_path / "final-h"
    capsys.readouterr()
    assert main(["train", "--final-fit", str(trained.root), "--out", str(out), "--holdout", "0.5"]) == 0
    assert "held out" in capsys.readouterr().err
    selection, refit = Split.load(trained.split_path), Split.load(out / "split.json")
    sel = {e.path: e.split for e in selection.entries}
    new = {e.path: e.split for e in refit.entries}
    assert {p for p, s in sel.items() if s == "test"} == {p for p, s in new.items() if s == "test"}
    held = {p for p, s in new.items() if s == "val"}
    moved = {p for p, s in new.items() if s == "train" and sel[p] == "val"}
    assert held and moved and held | moved == {p for p, s in sel.items() if s == "val"}
    assert {e.label for e in refit.entries if e.split == "val"} == set(selection.classes)  # every class kept
    train_hashes = {e.sha256 for e in refit.entries if e.split == "train"}
    assert not train_hashes & {e.sha256 for e in refit.entries if e.split == "val"}  # no copy across
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_fit"]["val_in_training"] is False and metrics["final_fit"]["holdout"] == 0.5
    assert metrics["n"] == len(held)  # val metrics on the held-out slice only
    assert (out / "calibration.json").exists()  # calibrated on the held-out slice, like a selection run


def test_holdout_needs_final_fit(data, tmp_path, capsys):
    for argv, message in [(["--data", str(data)], "--holdout goes with --final-fit")]:
        assert main(["train", *argv, "--holdout", "0.5", "--out", str(tmp_path / "r")]) != 0
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_final_fit_needs_a_finished_run_with_a_test_split(data, tmp_path, capsys):
    no_test = tmp_path / "no-test"
    assert main(["train", "--data", str(data), "--out", str(no_test), "--epochs", "1", *TINY]) == 0
    capsys.readouterr()
    for argv, message in [([str(no_test)], "has no test split"), ([str(tmp_path)], "is not a finished run"),
                          ([str(no_test), "--recipe", "demo"], "not with --recipe or --resume")]:
        assert main(["train", "--final-fit", *argv]) != 0
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "no-test-final").exists()


def test_single_class_dataset_is_refused(tmp_path, capsys):
    root = _write_pngs(tmp_path / "one", ["only"], 4)
    rc = main(["train", "--data", str(root), "--out", str(tmp_path / "r"), *TINY])
    assert rc != 0 and "class" in capsys.readouterr().err


def test_truncated_model_file_is_a_clear_error(trained, tmp_path):
    from edgemri.train.keras_model import load_keras

    broken = tmp_path / "model.keras"
    broken.write_bytes(trained.model.read_bytes()[:500])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_keras(broken)


def test_cli_help_does_not_import_keras_or_tensorflow():
    code = ("import sys; from edgemri.cli import main; main(['train', '--help']); main(['evaluate', '--help']);"
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'tf_keras') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    for option in ("--arch", "--data", "--epochs", "--image-size", "--batch-size", "--lr", "--seed", "--out",
                   "--resume", "--weights", "--augment", "--arch-opt", "--schedule", "--patience"):
        assert option in proc.stdout


JAX_SCRIPT = textwrap.dedent("""
    import sys

    class NoTensorFlow:  # a machine without TensorFlow, as on a JAX GPU box: importing it fails
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "tf_keras"):
                raise ImportError("TensorFlow is blocked in this test")
            return None

    sys.meta_path.insert(0, NoTensorFlow())
    from edgemri.train.config import TrainConfig
    from edgemri.train.trainer import train
    import keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    cfg = TrainConfig(arch="simple-cnn", data=sys.argv[1], out=sys.argv[2], epochs=1, image_size=32,
                      batch_size=8, arch_options={"filters": "8,16"}, tensorboard=False)
    run = train(cfg, verbose=0)
    assert "tensorflow" not in sys.modules
    print("OK", run.root)
""")


def test_jax_backend_trains_one_epoch(data, tmp_path):
    """EDGEMRI_JAX_PYTHON may name another interpreter with jax (and edgemri) installed, e.g. a venv
    without TensorFlow at all, which proves the data pipeline needs no TensorFlow."""
    import importlib.util

    python = os.environ.get("EDGEMRI_JAX_PYTHON") or sys.executable
    if python == sys.executable and importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed here (pip install jax, or set EDGEMRI_JAX_PYTHON to a python with it)")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    proc = subprocess.run([python, "-c", JAX_SCRIPT, str(data), str(tmp_path / "jax-run")], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "jax-run" / "model.keras").is_file()


def test_explain_writes_gradcam_overlays_from_the_last_spatial_layer(trained, data, tmp_path, capsys):
    from PIL import Image

    from edgemri.train.explain import last_spatial_layer
    from edgemri.train.keras_model import load_keras

    image = min((data / "meningioma").glob("*.png"))
    assert main(["explain", str(trained.root), str(image), "--out", str(tmp_path)]) == 0
    layer = last_spatial_layer(load_keras(trained.model))
    assert layer == "block2_pool"  # filters=8,16: the last rank-4 layer before the head
    assert f"layer {layer}" in capsys.readouterr().out
    png = Image.open(tmp_path / f"{image.stem}_gradcam.png")
    assert png.size == (32, 32) and png.mode == "RGB"
    assert main(["explain", str(trained.root), str(image), "--layer", "nope"]) != 0


def test_fine_tune_from_weights_freezes_then_unfreezes_at_lower_lr(data, tmp_path):
    from edgemri.train.models import build

    donor = build("simple-cnn", (32, 32, 3), 5, filters="8,16")  # other head size: skipped on load
    weights = tmp_path / "donor.weights.h5"
    donor.save_weights(weights)
    out = tmp_path / "ft"
    rc = main(["train", "--data", str(data), "--out", str(out), "--epochs", "2", "--weights", str(weights),
               "--freeze-epochs", "1", "--fine-tune-layers", "1", "--schedule", "constant", "--warmup-epochs", "0",
               "--lr", "0.01", *TINY])
    assert rc == 0
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["phase"]) for r in rows] == [0, 1]
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.01, 0.001])
    from edgemri.train.keras_model import load_keras

    model = load_keras(out / "checkpoint" / "last.keras")  # after epoch 2 (model.keras = best epoch)
    # block1 stayed frozen through both phases: still the donor's weights; the last conv was fine-tuned
    np.testing.assert_array_equal(model.get_layer("block1_1_conv").get_weights()[0],
                                  donor.get_layer("block1_1_conv").get_weights()[0])
    assert not np.array_equal(model.get_layer("block2_2_conv").get_weights()[0],
                              donor.get_layer("block2_2_conv").get_weights()[0])


def test_merge_classes_and_group_duplicates(data, tmp_path):
    """Binary tumor/no-tumor from a 4-class layout, with copies of an image kept in one split."""
    import json
    import shutil

    root = tmp_path / "brain"
    shutil.copytree(data, root)
    copies = [root / "glioma" / f"copy_{i}.png" for i in range(3)]
    for c in copies:
        shutil.copy(root / "glioma" / "glioma_000.png", c)
    out = tmp_path / "run"
    rc = main(["train", "--data", str(root), "--out", str(out), "--epochs", "1", "--merge",
               "tumor=glioma,meningioma", "--group-duplicates", *TINY])
    assert rc == 0
    run = RunDir.open(out)
    assert list(run.manifest().classes) == ["notumor", "tumor"]
    entries = json.loads(run.split_path.read_text())["files"]
    dup_splits = {e["split"] for e in entries if Path(e["path"]).name in {"glioma_000.png", *(c.name for c in copies)}}
    assert len(dup_splits) == 1
    assert {e["class"] for e in entries} == {"notumor", "tumor"}


@pytest.mark.slow
def test_cv_script_trains_every_fold_and_pools_disjoint_test_folds(data, tmp_path):
    """benchmarks/cv.py: 2 folds, each tests half of the images; the pooled n is every image once."""
    import json
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "cv.py"
    out = tmp_path / "cv"
    cmd = [sys.executable, str(script), str(out), "--folds", "2", "--", "--data", str(data), "--epochs", "1",
           "--val-fraction", "0.2", *TINY]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "cv.json").read_text())
    tested = [e["path"] for i in range(2) for e in json.loads((out / f"fold{i}" / "split.json").read_text())["files"]
              if e["split"] == "test"]
    assert len(tested) == len(set(tested)) == 30 == summary["pooled"]["n"]
    assert [row["n"] for row in summary["per_fold"]] == [15, 15]
    assert "| pooled | 30 |" in done.stdout
    cmd[3:3] = ["--only", "1"]  # one fold of the two: reused, not retrained, pooled alone
    again = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "Epoch 1/1" not in again.stdout + again.stderr
    assert json.loads((out / "cv.json").read_text())["pooled"]["n"] == 15
    same = subprocess.run([sys.executable, str(script), str(out), "--paired", str(out)], check=False,
                          capture_output=True, text=True, timeout=600)  # a CV against itself: no discordant image
    assert same.returncode == 0 and "right only in the first 0, only in the second 0; exact McNemar p = 1" in same.stdout


# -- devices, precision and the loader (train/distribute.py, train/dataset.py) ---------------------
@pytest.mark.parametrize("argv, message", [
    (["--precision", "mixed_bfloat16"], "needs a GPU on the TensorFlow backend"),
    (["--devices", "2"], "needs the JAX backend"),
    (["--lr-scaling", "sqrt"], "--lr-scaling must be one of"),
])
def test_device_and_precision_refusals_on_the_tensorflow_cpu_backend(data, tmp_path, capsys, argv, message):
    import keras

    if keras.backend.backend() != "tensorflow" or _tf_gpus():
        pytest.skip("checks the TensorFlow CPU backend")
    rc = main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--epochs", "1", *TINY, *argv])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()  # nothing written


def _tf_gpus() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _batches(dataset, epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """What Keras' fit sees: the batches through its own adapter (and thread pool when workers > 1)."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    dataset.set_epoch(epoch)
    adapter = PyDatasetAdapter(dataset, shuffle=False)
    adapter.on_epoch_begin()
    try:
        return [(np.asarray(x), np.asarray(y)) for x, y, _ in adapter.get_numpy_iterator()]
    finally:
        adapter.on_epoch_end()


def test_loader_threads_and_process_shards_see_the_same_batches():
    from edgemri.runtime.manifest import InputSpec
    from edgemri.train.augment import preset
    from edgemri.train.dataset import make_train_dataset

    rng = np.random.default_rng(0)
    pixels, labels = rng.integers(0, 256, (22, 16, 16, 3), dtype=np.uint8), rng.integers(0, 3, 22)
    spec = InputSpec(height=16, width=16)

    def make(**kw):
        return make_train_dataset(pixels, labels, spec, 8, preset("mri"), 3, None, **kw)

    one = _batches(make(workers=1), epoch=2)
    three = _batches(make(workers=3), epoch=2)
    assert [len(y) for _, y in one] == [8, 8, 6]
    for (x1, y1), (x3, y3) in zip(one, three, strict=True):
        np.testing.assert_array_equal(x1, x3)
        np.testing.assert_array_equal(y1, y3)
    assert not np.array_equal(one[0][0], _batches(make(workers=1), epoch=3)[0][0])  # a new epoch: new batches
    # two processes: each feeds half of every global batch, the same images as one process takes
    halves = [_batches(make(shard=(k, 2), replicas=2, workers=2), epoch=2) for k in (0, 1)]
    for (_, y), (_, y0), (_, y1) in zip(one, *halves, strict=True):
        np.testing.assert_array_equal(np.concatenate([y0, y1]), y)
