"""`edgemri predict` on an emulated aarch64 Raspberry Pi gives the x86 probabilities exactly.

Builds (or reuses, from EDGEMRI_PI_CACHE, default ~/.cache/edgemri-pi) an arm64 CPython 3.11
sysroot from Debian bookworm packages plus the aarch64 wheels of edgemri[litert] (no
TensorFlow), makes a tiny full-int8 TFLite model on x86, and runs benchmarks/pi/run_check.py's
check: int8 output, so the dequantized probabilities must be identical. About 1-2 minutes with a
cold cache, ~30 s warm, on a 2-core x86-64 box.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.emulation


def _missing_for_emulation(resolve_wheels) -> str | None:
    """Why the arm64 sysroot cannot be built here, or None (probed only when it is needed)."""
    if shutil.which("qemu-aarch64-static") is None:
        return "qemu-aarch64-static is missing (apt-get install qemu-user-static)"
    if shutil.which("apt-get") is None or not Path("/usr/share/keyrings/debian-archive-keyring.gpg").exists():
        return "needs Debian's apt-get and archive keyring to fetch the arm64 packages"
    if not (resolve_wheels.reachable("pypi.org") and resolve_wheels.reachable("deb.debian.org", 80)):
        return "PyPI or deb.debian.org unreachable: cannot build the arm64 sysroot"
    return None


@pytest.fixture(scope="module")
def sysroot(resolve_wheels, run_check):
    reason = _missing_for_emulation(resolve_wheels)
    if reason:
        pytest.skip(reason)
    return run_check.build_sysroot("pi4")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, pi_module):
    pytest.importorskip("tensorflow", reason="making the int8 model needs TensorFlow (edgemri[convert])")
    return pi_module("make_tiny_model").make(tmp_path_factory.mktemp("pi-model"))


def test_emulated_pi_predicts_the_same_probabilities_as_x86(sysroot, tiny_model, run_check):
    model, images = tiny_model
    report = run_check.check(model, images, sysroot, tolerance=0.0)
    target = report["target"]
    assert target["machine"] == "aarch64" and target["python"].startswith("3.11.")
    assert target["tensorflow"] is False, "the Pi runtime must run without TensorFlow"
    assert target["edgemri_origin"].startswith(str(sysroot)), "edgemri must come from its wheel"
    from importlib.metadata import version

    assert target["ai-edge-litert"] == version("ai-edge-litert"), "compare the same litert on both sides"
    assert len(report["rows"]) == len(images)
    for row in report["rows"]:
        assert row["x86_label"] == row["aarch64_label"] and row["max_abs_diff"] == 0.0, row
    assert report["equal"]


def test_comparison_flags_a_different_probability(run_check):
    ref = [{"path": "/a.png", "label": "x", "probabilities": {"x": 0.6, "y": 0.4}}]
    emu = [{"path": "/a.png", "label": "x", "probabilities": {"x": 0.59, "y": 0.41}}]
    assert not run_check.compare(ref, emu, tolerance=0.0)[0]["ok"]
    assert run_check.compare(ref, emu, tolerance=0.02)[0]["ok"]
