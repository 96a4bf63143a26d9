"""The runtime's dependency set resolves to binary wheels for 64-bit Raspberry Pi OS.

`pip install "edgemri[litert]"` on a Pi must never fall back to a source build: every package of
edgemri + the litert extra needs an aarch64 (or pure-Python) wheel for CPython 3.11 (Raspberry
Pi OS bookworm) and 3.12. Downloads land in the shared Pi cache (EDGEMRI_PI_CACHE, default
~/.cache/edgemri-pi) that the emulation check reuses.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _needs_pypi(resolve_wheels):
    """Skip (not fail) offline; probed when a test runs, not when the module is collected."""
    if not resolve_wheels.reachable("pypi.org"):
        pytest.skip("PyPI (pypi.org:443) is unreachable: cannot resolve aarch64 wheels offline")


@pytest.fixture(scope="module")
def edgemri_wheel(resolve_wheels):
    return resolve_wheels.build_edgemri_wheel(resolve_wheels.cache_root() / "wheels" / "edgemri")


@pytest.mark.parametrize("python", ["3.11", "3.12"])
def test_runtime_with_litert_resolves_to_aarch64_wheels(python, edgemri_wheel, resolve_wheels):
    wheels = resolve_wheels.resolve(python, edgemri_wheel=edgemri_wheel)
    names = {w["name"] for w in wheels}
    assert {"edgemri", "numpy", "pillow", "typer", "rich", "ai-edge-litert"} <= names
    assert not names & {"tensorflow", "tf-keras", "keras", "onnx", "openvino"}, "the Pi runtime must stay light"
    tag = "cp" + python.replace(".", "")
    for w in wheels:
        assert Path(w["path"]).is_file()
        if w["platform"] != "any":  # native code: built for aarch64 and this CPython (or the stable ABI)
            assert "aarch64" in w["platform"], w["file"]
            assert w["python"] in (tag, "cp310", "cp39", "cp38", "cp37") and (w["python"] == tag or "abi3" in w["file"]), \
                w["file"]
            glibc = [int(p.split("_")[2]) for p in w["platform"].split(".") if p.startswith("manylinux_2_")]
            assert not glibc or min(glibc) <= resolve_wheels.GLIBC_MAX, f"{w['file']} needs a newer glibc than bookworm's"


def test_cli_prints_the_resolved_set(capsys, resolve_wheels):
    rc = resolve_wheels.main(["--python", "3.11", "--no-edgemri"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "linux aarch64 CPython 3.11" in out
    for name in ("numpy", "pillow", "typer", "rich", "ai-edge-litert"):
        assert f"  {name} " in out


def test_a_package_without_a_matching_wheel_fails_to_resolve(tmp_path, resolve_wheels):
    # ai-edge-litert 2.3.0 ships aarch64 wheels for CPython >= 3.10 only: the check must fail
    # for 3.9 (pip would build from source there), not silently pass.
    with pytest.raises(subprocess.CalledProcessError):
        resolve_wheels.download("3.9", tmp_path, ["ai-edge-litert==2.3.0"])
