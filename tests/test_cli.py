"""The CLI shell: help, version, one-line errors, did-you-mean, --debug, quiet frameworks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from edgemri import __version__, quiet
from edgemri.cli import app, main
from edgemri.data.discover import CLASS_LAYOUT, SPLIT_LAYOUT
from edgemri.errors import DataError


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "edgemri" in out
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def _command_names() -> set[str]:
    import typer.main

    return set(typer.main.get_command(app).commands)


def test_unknown_command_suggests(capsys):
    before = _command_names()
    assert "predict" in before
    assert main(["predcit"]) != 0
    err = capsys.readouterr().err
    assert "No such command" in err
    assert "Did you mean 'predict'?" in err
    assert main(["data", "audti"]) != 0  # sub-commands of a group too
    assert "Did you mean 'audit'?" in capsys.readouterr().err
    assert _command_names() == before  # the global app is only read


def test_user_error_is_one_line_and_debug_raises(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(quiet.DEBUG_VAR, raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["data", "audit", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {empty.resolve()} has no class folders. Expected {CLASS_LAYOUT} or {SPLIT_LAYOUT}"
    assert "Traceback" not in err
    with pytest.raises(DataError):
        main(["--debug", "data", "audit", str(empty)])
    assert quiet.DEBUG_VAR not in os.environ  # --debug does not leak into the next in-process call
    assert main(["data", "audit", str(empty)]) == 2


def test_root_callback_quiets_and_restores_the_environment(tmp_path, monkeypatch):
    for key in quiet.MANAGED_VARS:
        monkeypatch.delenv(key, raising=False)
    seen: dict[str, str | None] = {}
    monkeypatch.setattr("edgemri.data.synth.synthesize",
                        lambda out, **kw: seen.update({k: os.environ.get(k) for k in quiet.MANAGED_VARS}) or out)
    assert main(["data", "synth", str(tmp_path / "s"), "--per-class", "1"]) == 0
    assert seen["TF_CPP_MIN_LOG_LEVEL"] == quiet.QUIET_ENV["TF_CPP_MIN_LOG_LEVEL"] and not seen[quiet.DEBUG_VAR]
    assert main(["--debug", "data", "synth", str(tmp_path / "s"), "--per-class", "1"]) == 0
    assert seen[quiet.DEBUG_VAR] == "1" and seen["TF_CPP_MIN_LOG_LEVEL"] is None
    assert all(key not in os.environ for key in quiet.MANAGED_VARS)


QUIET_TF = """
import sys, warnings
from edgemri import quiet
quiet.configure(sys.argv[1] == "debug")
import tensorflow as tf
tf.config.list_physical_devices()
warnings.warn("a real warning")
print(float(tf.reduce_sum(tf.ones(3))))
"""

NOISE_MARKERS = ("oneDNN custom operations", "cudart_stub", "failed call to cuInit", "absl::InitializeLog",
                 "cpu_feature_guard")


@pytest.mark.slow
def test_tensorflow_start_up_is_quiet_but_warnings_stay() -> None:
    """A TensorFlow import through the CLI's quieting prints no framework noise, only what matters."""
    env = {k: v for k, v in os.environ.items() if k not in quiet.MANAGED_VARS}
    proc = subprocess.run([sys.executable, "-c", QUIET_TF, "quiet"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "3.0"
    assert [m for m in NOISE_MARKERS if m in proc.stderr] == [], proc.stderr
    assert "UserWarning: a real warning" in proc.stderr


def test_noise_filter_keeps_real_lines() -> None:
    noise = ["WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
             "I0000 00:00:1796191075.339457    4442 port.cc:153] oneDNN custom operations are on.",
             ("E0000 00:00:1796191135.625527    4901 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
              "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)"),
             "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not find"]
    real = ["/x/y.py:3: UserWarning: a real warning",
            "E0000 00:00:1796191135.625527    4901 op_kernel.cc:1] Invalid argument: shape mismatch",
            "Traceback (most recent call last):"]
    assert [line for line in noise if not quiet.is_noise(line)] == []
    assert [line for line in real if quiet.is_noise(line)] == []
