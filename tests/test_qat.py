"""QAT end to end on a tiny ConvMixer-edge (standalone BatchNorm, Add, ReLU6: the interesting layers)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgemri.cli import main
from edgemri.runtime.manifest import Manifest, sidecar_path

pytestmark = pytest.mark.slow

# order "paper": BatchNorm after the activation, the case that needs an explicit QAT config (below);
# the edge default (order "fold") is covered by the plan test on a fresh build
ARCH_OPTIONS = {"dim": 16, "depth": 1, "kernel": 3, "patch": 4, "order": "paper"}


@pytest.fixture(scope="module")
def qat_run(tmp_path_factory: pytest.TempPathFactory, make_run):
    run = make_run(tmp_path_factory.mktemp("qat"), arch="convmixer-edge", arch_options=ARCH_OPTIONS, epochs=6)
    # --distill 0: label-only QAT (sparse targets); the demo job runs the default, distilled soft targets
    rc = main(["qat", str(run.root), "--epochs", "1", "--batch-size", "8", "--distill", "0"])
    return run, rc


def test_qat_writes_saved_model_and_metrics(qat_run) -> None:
    run, rc = qat_run
    assert rc == 0
    assert (run.qat_saved_model / "saved_model.pb").is_file()
    metrics = json.loads((run.qat_dir / "metrics.json").read_text())
    for key in ("fp32_val_accuracy", "qat_val_accuracy", "qat_fp32_top1_agreement"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["weight_copy_max_prob_diff"] < 1e-3, "tf_keras rebuild must reproduce the Keras 3 model"
    assert len(metrics["history"]["loss"]) == 1 and metrics["distill"] == 0.0
    assert json.loads((run.qat_dir / "config.json").read_text())["arch_options"] == ARCH_OPTIONS


def test_every_layer_has_an_explicit_quantization_decision(qat_run) -> None:
    run, _ = qat_run
    plan = json.loads((run.qat_dir / "metrics.json").read_text())["quantization_plan"]
    import keras

    names = {layer.name for layer in keras.models.load_model(run.model).layers if layer.name != "input"}
    assert set(plan) == names
    assert plan["stem_bn"].startswith("output-only")  # BN after an activation: explicit config
    assert plan["mixer0_add"] == "default-8bit"


def test_tflite_int8_uses_the_qat_model(qat_run) -> None:
    run, _ = qat_run
    assert main(["convert", str(run.root), "-t", "tflite-int8", "-t", "tflite-int8-ptq", "--calib", "8",
                 "--min-agreement", "0"]) == 0
    ptq = Manifest.load(sidecar_path(run.export_dir / "tflite-int8-ptq" / "model.tflite"))
    assert ptq.extra["source"] == "ptq" and ptq.input.dtype == "uint8"  # the FP32 model, calibrated, QAT or not
    ptq_record = json.loads((run.export_dir / "tflite-int8-ptq" / "verification.json").read_text())
    assert ptq_record["reference"] == "fp32"
    manifest = Manifest.load(sidecar_path(run.export_dir / "tflite-int8" / "model.tflite"))
    assert manifest.extra["source"] == "qat"
    assert manifest.input.dtype == "uint8" and manifest.input.quantization is not None
    record = json.loads((run.export_dir / "tflite-int8" / "verification.json").read_text())
    # a QAT-sourced artifact is gated against the QAT model; its distance to FP32 is reported too
    assert record["reference"] == "qat" and 0.0 <= record["vs_fp32"]["top1_agreement"] <= 1.0
    assert record["top1_agreement"] >= 0.9  # int8 conversion of the QAT graph follows the QAT model


def test_mismatched_arch_options_are_one_line_error(qat_run, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run, _ = qat_run
    root = tmp_path / "run"
    shutil.copytree(run.root, root, ignore=shutil.ignore_patterns("export", "qat"))
    config = json.loads((root / "config.json").read_text())
    config["arch_options"]["dim"] = 8
    (root / "config.json").write_text(json.dumps(config))
    assert main(["qat", str(root), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: QAT failed") and "weight shapes" in err and len(err.splitlines()) == 1
    assert not (root / "qat").exists()


def test_distill_targets_mix_labels_with_fp32_probabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "0")  # importing the worker must not switch this process to Keras 2
    from edgemri.convert.qat_worker import fit_targets

    labels = np.array([0, 2])
    fp32 = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]], dtype=np.float32)
    same, loss = fit_targets(labels, fp32, 0.0, 3)
    assert loss == "sparse_categorical_crossentropy" and same is labels
    mixed, loss = fit_targets(labels, fp32, 0.5, 3)
    assert loss == "categorical_crossentropy"
    np.testing.assert_allclose(mixed, [[0.8, 0.15, 0.05], [0.1, 0.1, 0.8]], rtol=1e-6)
    copy, _ = fit_targets(labels, fp32, 1.0, 3)
    np.testing.assert_allclose(copy, fp32)
    np.testing.assert_allclose(mixed.sum(1), 1.0, rtol=1e-6)


def test_distill_out_of_range_is_refused(qat_run, capsys: pytest.CaptureFixture) -> None:
    run, _ = qat_run
    before = (run.qat_dir / "metrics.json").read_bytes()
    assert main(["qat", str(run.root), "--distill", "1.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--distill must be between 0 and 1" in err and len(err.splitlines()) == 1
    assert (run.qat_dir / "metrics.json").read_bytes() == before


ENV_PROBE = """
import json, os, sys
before = dict(os.environ)
import edgemri.convert.qat, edgemri.convert.qat_worker
print(json.dumps({k: (before.get(k), os.environ.get(k)) for k in set(before) | set(os.environ)
                  if before.get(k) != os.environ.get(k)}))
"""


def test_importing_qat_leaves_the_environment_alone() -> None:
    """Keras 2 is chosen in the worker's process only: importing either module changes no variable."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    proc = subprocess.run([sys.executable, "-c", ENV_PROBE], env=env, capture_output=True, text=True, timeout=120,
                          check=True)
    assert json.loads(proc.stdout) == {}


@pytest.mark.parametrize("debug", [False, True])
def test_worker_gets_keras2_and_quiet_logs_in_its_own_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  debug: bool) -> None:
    import os
    import subprocess

    from edgemri import quiet
    from edgemri.convert import qat

    for key in ("TF_USE_LEGACY_KERAS", *quiet.MANAGED_VARS):
        monkeypatch.delenv(key, raising=False)
    if debug:
        monkeypatch.setenv(quiet.DEBUG_VAR, "1")
    seen: dict = {}

    def fake_run(cmd, env, **kwargs):
        seen.update(cmd=cmd, env=env)
        Path(f"{cmd[-1]}.result.json").write_text(json.dumps({"fp32_val_accuracy": 0.5}))
        return subprocess.CompletedProcess(cmd, 0, stdout="worker log\n")

    monkeypatch.setattr(qat.subprocess, "run", fake_run)
    assert qat._spawn(tmp_path / "job.json", timeout=None) == {"fp32_val_accuracy": 0.5}
    assert seen["cmd"][1:3] == ["-m", "edgemri.convert.qat_worker"]
    assert seen["env"]["TF_USE_LEGACY_KERAS"] == "1" and "TF_USE_LEGACY_KERAS" not in os.environ
    assert seen["env"].get("TF_CPP_MIN_LOG_LEVEL") == (None if debug else "2")
    assert (seen["env"].get(quiet.DEBUG_VAR) == "1") is debug


def test_folded_convmixer_edge_batchnorm_folds_into_its_convolutions() -> None:
    """The edge default (order "fold"): every BatchNorm follows a conv, so tfmot folds it (no Mul/Add)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import json
        import tensorflow_model_optimization as tfmot
        import tf_keras
        from edgemri.convert.qat_worker import plan_layers
        from edgemri.train.models import build
        model = build("convmixer-edge", (32, 32, 3), 3, keras=tf_keras, dim=8, depth=2, patch=4)
        print(json.dumps(plan_layers(model, tfmot)))
    """)
    from edgemri.quiet import child_env

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False,
                         env=child_env(TF_USE_LEGACY_KERAS="1"))
    assert out.returncode == 0, out.stderr[-2000:]
    plan = json.loads(out.stdout.strip().splitlines()[-1])
    bns = {name: how for name, how in plan.items() if name.endswith("_bn")}
    assert len(bns) == 5 and all(how.startswith("folded") for how in bns.values()), bns
