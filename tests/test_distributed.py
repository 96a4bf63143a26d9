"""Data-parallel training (train/distribute.py) on simulated CPU devices, and its refusals.

JAX fixes its device count when it starts, so every JAX run is a subprocess with KERAS_BACKEND=jax
and XLA_FLAGS=--xla_force_host_platform_device_count=N in its environment (TensorFlow blocked, as
on a JAX GPU box). The plan's rules (batch split, learning-rate scaling, device checks) are also
tested in-process on a stand-in for Keras.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgemri.errors import UsageError
from edgemri.train import distribute
from edgemri.train.config import TrainConfig
from edgemri.train.dataset import batch_sizes

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None or importlib.util.find_spec("keras") is None,
                               reason="needs jax and keras")
#: 1 vs 2 devices on the same global batch: same math, only the all-reduce order differs (float32).
WEIGHT_ATOL = 1e-5

BLOCK_TF = textwrap.dedent("""
    import sys

    class NoTensorFlow:  # a JAX machine without TensorFlow: importing it fails
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "tf_keras"):
                raise ImportError("TensorFlow is blocked in this test")
            return None

    sys.meta_path.insert(0, NoTensorFlow())
""")


def _env(devices: int, **extra: str) -> dict[str, str]:
    return {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
            "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """30 images with class-dependent bright squares (as tests/test_train.py draws them)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("data") / "brain"
    rng = np.random.default_rng(0)
    for k, name in enumerate(("glioma", "meningioma", "notumor")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            img = rng.integers(0, 60, (40, 40), dtype=np.uint8)
            img[4 + 9 * k:14 + 9 * k, 4 + 9 * k:14 + 9 * k] = 230
            Image.fromarray(img).save(root / name / f"{name}_{i:03d}.png")
    return root


# -- the plan, in-process -------------------------------------------------------------------------
def _fake_keras(devices: list[str], backend: str = "jax") -> SimpleNamespace:
    return SimpleNamespace(backend=SimpleNamespace(backend=lambda: backend),
                           distribution=SimpleNamespace(list_devices=lambda: list(devices)))


def _plan(monkeypatch, visible: list[str], processes: int = 1, backend: str = "jax", gpu: bool = False,
          saved: dict | None = None, **fields) -> distribute.Plan:
    monkeypatch.setattr(distribute, "init_multihost", lambda keras: (processes, 0))
    cfg = TrainConfig(arch="simple-cnn", data="d", out="o", **fields)
    return distribute.make_plan(_fake_keras(visible, backend), cfg.validate(), gpu, saved)


def test_global_batch_is_per_device_batch_times_devices_and_lr_scales_linearly(monkeypatch):
    plan = _plan(monkeypatch, ["gpu:0", "gpu:1", "gpu:2", "gpu:3"], devices="auto", batch_size=32, lr=1e-3)
    assert (plan.global_batch, plan.per_device_batch, plan.lr_scale) == (128, 32, 4.0)
    assert plan.distributed and plan.record()["mesh"] == {"shape": [4], "axis_names": ["batch"]}
    fixed = _plan(monkeypatch, ["gpu:0", "gpu:1"], devices="2", batch_size=32, global_batch=64, lr_scaling="none")
    assert (fixed.per_device_batch, fixed.lr_scale) == (32, 1.0)
    one = _plan(monkeypatch, ["cpu:0", "cpu:1"], batch_size=32)  # the default: one device, as before
    assert (one.devices, one.global_batch, one.lr_scale, one.distributed) == (("cpu:0",), 32, 1.0, False)


def test_a_resumed_run_keeps_its_global_batch_on_other_devices(monkeypatch):
    saved = {"distribution": {"global_batch": 16}}
    plan = _plan(monkeypatch, ["cpu:0"], devices="1", batch_size=8, saved=saved)
    assert (plan.global_batch, plan.lr_scale) == (16, 2.0)


@pytest.mark.parametrize("fields, visible, processes, message", [
    ({"devices": "3"}, ["cpu:0", "cpu:1"], 1, "--devices 3 but 2 device(s) are visible"),
    ({"devices": "2", "global_batch": 7}, ["cpu:0", "cpu:1"], 1, "a global batch of 7 does not divide over 2"),
    ({"devices": "1"}, ["cpu:0", "cpu:1"], 2, "every process must take part"),
    ({"devices": "zero"}, ["cpu:0"], 1, "--devices must be auto or a positive count"),
])
def test_impossible_device_plans_are_one_line_errors(monkeypatch, fields, visible, processes, message):
    with pytest.raises(UsageError) as err:
        _plan(monkeypatch, visible, processes, **fields)
    assert message in err.value.one_line() and "\n" not in err.value.one_line()


def test_tensorflow_backend_refuses_several_devices_and_cpu_mixed_precision(monkeypatch):
    with pytest.raises(UsageError, match="needs the JAX backend"):
        _plan(monkeypatch, [], backend="tensorflow", devices="2")
    with pytest.raises(UsageError, match="needs a GPU on the TensorFlow backend"):
        _plan(monkeypatch, [], backend="tensorflow", precision="mixed_bfloat16")
    assert _plan(monkeypatch, [], backend="tensorflow", gpu=True, precision="mixed_bfloat16").precision == \
        "mixed_bfloat16"
    assert _plan(monkeypatch, ["cpu:0"], precision="mixed_bfloat16").precision == "mixed_bfloat16"  # JAX CPU
    assert _plan(monkeypatch, [], backend="tensorflow", gpu=True).precision == "mixed_float16"  # auto, as before


def test_trailing_batch_is_kept_only_when_it_divides_over_the_devices():
    assert batch_sizes(21, 8) == [8, 8, 5]
    assert batch_sizes(21, 8, replicas=2) == [8, 8]  # 5 images do not shard over 2 devices
    assert batch_sizes(22, 8, replicas=2) == [8, 8, 6]
    assert batch_sizes(17, 8) == [8, 8]  # one image: no BatchNorm statistics


# -- simulated devices ------------------------------------------------------------------------------
SAME_WEIGHTS = BLOCK_TF + textwrap.dedent("""
    import json, zipfile
    from pathlib import Path

    import numpy as np
    from edgemri.train.config import TrainConfig
    from edgemri.train.trainer import train
    import keras

    data, root = sys.argv[1], Path(sys.argv[2])
    common = dict(arch="simple-cnn", data=data, image_size=32, batch_size=8, global_batch=8, seed=0,
                  arch_options={"filters": "8,16"}, tensorboard=False, loader_workers=2, patience=0)
    for name, devices in (("one", "1"), ("two", "2")):
        train(TrainConfig(out=str(root / name), devices=devices, epochs=1, **common), verbose=0)

    def weights(path):
        return [np.asarray(w, np.float64) for w in keras.models.load_model(path, compile=False).get_weights()]

    def max_diff(a, b):
        return max(float(np.max(np.abs(x - y))) for x, y in zip(weights(a), weights(b)))

    def structure(path):  # the saved model config, less Python object ids
        with zipfile.ZipFile(path) as z:
            text = z.read("config.json").decode()
        return json.loads(text, object_hook=lambda d: {k: v for k, v in d.items() if k != "shared_object_id"})

    out = {"after_1": max_diff(root / "one/checkpoint/last.keras", root / "two/checkpoint/last.keras"),
           "same_structure": structure(root / "one/model.keras") == structure(root / "two/model.keras")}
    # the 1-device run resumes on 2 devices and the 2-device run on 1: their epoch 2 must still agree
    for name, devices in (("one", "2"), ("two", "1")):
        train(TrainConfig(out=str(root / name), devices=devices, epochs=2, **common), resume=True, verbose=0)
    out["after_2_swapped"] = max_diff(root / "one/checkpoint/last.keras", root / "two/checkpoint/last.keras")
    out["tensorflow_loaded"] = "tensorflow" in sys.modules
    print("RESULT " + json.dumps(out))
""")


@needs_jax
@pytest.mark.slow
def test_one_and_two_devices_train_the_same_weights_and_resume_across_device_counts(data, tmp_path):
    """Same global batch (8) and seed on 1 and 2 simulated devices: weights within WEIGHT_ATOL after an
    epoch (3 steps + PreciseBN), and again after each run resumed on the other device count."""
    proc = subprocess.run([sys.executable, "-c", SAME_WEIGHTS, str(data), str(tmp_path)], env=_env(2),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT ")[-1])
    assert result["after_1"] < WEIGHT_ATOL and result["after_2_swapped"] < WEIGHT_ATOL, result
    assert result["same_structure"] and not result["tensorflow_loaded"]
    for name, first, second in (("one", 1, 2), ("two", 2, 1)):
        rows = list(csv.DictReader((tmp_path / name / "history.csv").open()))
        assert [int(r["devices"]) for r in rows] == [first, second]
        assert all(float(r["img_per_s"]) > 0 for r in rows)
        record = json.loads((tmp_path / name / "config.json").read_text())["distribution"]
        assert len(record["devices"]) == second and record["global_batch"] == 8  # the resumed run's plan
        assert record["per_device_batch"] == 8 // second and record["precision"] == "float32"


REFUSALS = BLOCK_TF + textwrap.dedent("""
    import contextlib, io, json
    from edgemri.cli import main

    data, out = sys.argv[1], sys.argv[2]
    base = ["train", "--data", data, "--out", out, "--arch", "simple-cnn", "--image-size", "32", "--epochs", "1"]
    results = []
    for extra in (["--devices", "3"], ["--devices", "2", "--global-batch", "7"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(base + extra)
        results.append([rc, err.getvalue().strip()])
    print("RESULT " + json.dumps(results))
""")


@needs_jax
def test_impossible_device_requests_fail_before_anything_is_written(data, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", REFUSALS, str(data), str(out)], env=_env(2),
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rc3, err3), (rc7, err7) = json.loads(proc.stdout.split("RESULT ")[-1])
    assert rc3 != 0 and "--devices 3 but 2 device(s) are visible" in err3 and len(err3.splitlines()) == 1
    assert rc7 != 0 and "does not divide over 2 devices" in err7 and len(err7.splitlines()) == 1
    assert not out.exists()


@needs_jax
def test_barrier_waits_for_every_process_with_a_long_timeout_and_is_a_no_op_alone(monkeypatch):
    """gloo gives the others 30 s to reach the first collective (building the model); processes that
    cache their images at different speeds missed it. The coordination service's barrier waits longer."""
    import jax
    from jax._src import distributed as jax_distributed

    calls = []
    client = SimpleNamespace(wait_at_barrier=lambda name, timeout_in_ms: calls.append((name, timeout_in_ms)))
    monkeypatch.setattr(jax_distributed.global_state, "client", client)
    monkeypatch.setattr(jax, "process_count", lambda: 1)  # stand-ins: this process never starts a JAX backend
    distribute.barrier(_fake_keras([], "tensorflow"), "x")  # other backends: one process, nothing to wait for
    distribute.barrier(_fake_keras([], "jax"), "x")  # one JAX process: nothing either
    assert calls == []
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    distribute.barrier(_fake_keras([], "jax"), "edgemri-model")
    assert calls == [("edgemri-model", distribute.BARRIER_TIMEOUT_S * 1000)] and distribute.BARRIER_TIMEOUT_S >= 300


# -- two jax.distributed processes -----------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@needs_jax
@pytest.mark.slow
def test_two_jax_processes_write_one_consistent_run(data, tmp_path):
    """Two processes on localhost (1 CPU device each, gloo collectives) train one epoch together:
    process 0 writes the run, process 1 writes nothing there, leaves no scratch, and reports the
    same metrics as process 0."""
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(out), "--arch", "simple-cnn", "--image-size", "32",
            "--batch-size", "4", "--arch-opt", "filters=8,16", "--epochs", "1", "--no-tensorboard",
            "--devices", "auto", "--loader-workers", "1"]
    code = BLOCK_TF + "from edgemri.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    port = _free_port()
    procs, scratch = [], []
    for rank in (0, 1):
        (tmp_path / f"tmp{rank}").mkdir()
        scratch.append(tmp_path / f"tmp{rank}")
        env = _env(1, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                   JAX_PROCESS_ID=str(rank), TMPDIR=str(tmp_path / f"tmp{rank}"))
        procs.append(subprocess.Popen([sys.executable, "-c", code, *argv], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    try:
        results = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    record = json.loads((out / "config.json").read_text())["distribution"]
    assert record["processes"] == 2 and len(record["devices"]) == 2 and record["global_batch"] == 8
    assert [int(r["epoch"]) for r in csv.DictReader((out / "history.csv").open())] == [1]
    assert (out / "model.keras").is_file() and (out / "manifest.json").is_file()
    assert not any(scratch[1].iterdir())  # process 1's private copy is gone

    def summary(err: str) -> str:
        line = [ln for ln in err.splitlines() if "val accuracy" in ln][-1]
        return line.replace("[process 1] ", "").split(" -> ")[0]

    lead, follower = (err for _, err in results)
    assert "[process 1] epoch 1/1:" in follower and "[process" not in lead
    assert summary(lead) == summary(follower)  # both replicas ended with the same weights
