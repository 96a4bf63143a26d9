"""Resolve edgemri's runtime dependency set for 64-bit Raspberry Pi OS (linux aarch64).

WHY: a Pi user runs ``pip install "edgemri[litert]"``. If any package in that set has no aarch64
wheel for their CPython, pip falls back to building from source on the Pi (slow, often failing).
``pip download --platform ... --only-binary=:all:`` proves from this x86 machine that every
package resolves to a published aarch64 binary wheel, for CPython 3.11 (Raspberry Pi OS bookworm)
and 3.12. The downloaded wheels are cached and reused by ``build_sysroot.sh`` for the emulated run.

Usage:
    python benchmarks/pi/resolve_wheels.py                       # 3.11 and 3.12, prints the set
    python benchmarks/pi/resolve_wheels.py --python 3.11 --litert "ai-edge-litert==1.4.0" --json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Raspberry Pi OS bookworm ships glibc 2.36: any manylinux tag up to 2_36 installs there. pip does
# not expand "manylinux_2_28" to older glibc tags by itself, so every tag is listed.
GLIBC_MAX = 36
PLATFORMS = ["manylinux2014_aarch64"] + [f"manylinux_2_{minor}_aarch64" for minor in range(17, GLIBC_MAX + 1)]
RUNTIME_PACKAGES = ["numpy", "pillow", "typer", "rich"]
DEFAULT_LITERT = "ai-edge-litert"
_SAVED = re.compile(r"(?:Saved|File was already downloaded)\s+(\S+\.whl)")


def reachable(host: str, port: int = 443, timeout: float = 5.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens (tests skip instead of failing offline)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def cache_root() -> Path:
    """The cache shared with build_sysroot.sh (EDGEMRI_PI_CACHE overrides ~/.cache/edgemri-pi)."""
    return Path(os.environ.get("EDGEMRI_PI_CACHE", Path.home() / ".cache" / "edgemri-pi")).expanduser()


def _package_folders() -> list[str]:
    """Top-level source folders named by pyproject's [tool.setuptools] package-dir."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return ["edgemri", "runtime", "train", "convert"]
    with open(REPO / "pyproject.toml", "rb") as f:
        package_dir = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return sorted({value.split("/")[0] for value in package_dir.values()})


def build_edgemri_wheel(dest: Path) -> Path:
    """Build the pure-Python edgemri wheel from this checkout (no deps) and return its path.

    Built from a scratch copy of the package sources, so a stale ``build/`` in the checkout (a
    module deleted since) never leaks into the wheel and parallel builds do not collide. Build
    isolation is skipped when setuptools is importable, so the build needs no network."""
    import shutil
    import tempfile

    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("edgemri-*.whl"):
        old.unlink()
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    with tempfile.TemporaryDirectory(prefix="edgemri-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE", "setup.py", "setup.cfg", "MANIFEST.in"):
            if (REPO / name).exists():
                shutil.copy2(REPO / name, src / name)
        for folder in _package_folders():
            shutil.copytree(REPO / folder, src / folder, ignore=skip)
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dest), str(src)]
        try:
            import setuptools  # noqa: F401

            cmd.insert(5, "--no-build-isolation")
        except ImportError:
            pass
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True)  # setuptools warnings: noise
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"pip wheel of {REPO} failed")
    wheels = sorted(dest.glob("edgemri-*.whl"))
    if not wheels:
        raise SystemExit(f"pip wheel wrote no edgemri wheel into {dest}")
    return wheels[-1]


def download(python: str, dest: Path, requirements: list[str], constraints: Path | None = None,
             offline_first: bool = False) -> list[Path]:
    """``pip download`` the aarch64 wheels of ``requirements`` for CPython ``python``; return them.

    ``offline_first`` resolves against the wheels already in ``dest`` first (no index: a warm
    rebuild takes a second instead of ~15 s of index queries) and goes to the index only when
    that fails. Raises CalledProcessError (pip's message on stderr) when something has no
    aarch64 wheel."""
    dest.mkdir(parents=True, exist_ok=True)
    if offline_first:
        try:
            return _pip_download(python, dest, requirements, constraints, ["--no-index", "--find-links", str(dest)],
                                 quiet=True)
        except subprocess.CalledProcessError:
            pass
    return _pip_download(python, dest, requirements, constraints, [])


def _pip_download(python: str, dest: Path, requirements: list[str], constraints: Path | None,
                  extra: list[str], quiet: bool = False) -> list[Path]:
    tag = "cp" + python.replace(".", "")
    cmd = [sys.executable, "-m", "pip", "download", "--dest", str(dest), "--only-binary=:all:",
           "--python-version", python, "--implementation", "cp", "--abi", tag,
           "--progress-bar", "off", "--disable-pip-version-check"]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    if constraints:
        cmd += ["-c", str(constraints)]
    proc = subprocess.run(cmd + extra + requirements, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        if not quiet:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise subprocess.CalledProcessError(proc.returncode, cmd, proc.stdout, proc.stderr)
    found = [Path(m.group(1)) for m in _SAVED.finditer(proc.stdout)]
    return [p if p.is_absolute() else (Path.cwd() / p) for p in found]


def describe(wheel: Path) -> dict:
    """name, version and platform tag from a wheel file name (PEP 427)."""
    parts = wheel.name[:-4].split("-")
    return {"name": parts[0].lower().replace("_", "-"), "version": parts[1],
            "python": parts[-3], "platform": parts[-1], "file": wheel.name}


def resolve(python: str, litert: str = DEFAULT_LITERT, edgemri_wheel: Path | None = None,
            constraints: Path | None = None, dest: Path | None = None,
            offline_first: bool = False) -> list[dict]:
    """The resolved aarch64 wheel set of edgemri[litert] (or the bare runtime packages) for ``python``."""
    dest = dest or cache_root() / "wheels" / ("cp" + python.replace(".", ""))
    if edgemri_wheel is not None:
        # pip keeps a same-named file already in dest: drop the copy of an older checkout's wheel.
        for stale in dest.glob("edgemri-*.whl"):
            stale.unlink()
        requirements = [f"edgemri[litert] @ {edgemri_wheel.resolve().as_uri()}", litert]
    else:
        requirements = RUNTIME_PACKAGES + [litert]
    wheels = download(python, dest, requirements, constraints, offline_first)
    return sorted((describe(w) | {"path": str(w)} for w in wheels), key=lambda d: d["name"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", help="CPython version(s); default 3.11 and 3.12")
    parser.add_argument("--litert", default=DEFAULT_LITERT, help="requirement for the litert backend")
    parser.add_argument("--constraints", type=Path, help="pip constraints file (e.g. constraints.txt)")
    parser.add_argument("--no-edgemri", action="store_true", help="resolve the bare runtime packages only")
    parser.add_argument("--json", action="store_true", help="print the resolved sets as JSON")
    parser.add_argument("--offline-first", action="store_true",
                        help="resolve from the cached wheels first, the index only if that fails")
    args = parser.parse_args(argv)
    versions = args.python or ["3.11", "3.12"]
    wheel = None if args.no_edgemri else build_edgemri_wheel(cache_root() / "wheels" / "edgemri")
    result: dict[str, list[dict]] = {}
    for python in versions:
        try:
            result[python] = resolve(python, args.litert, wheel, args.constraints,
                                     offline_first=args.offline_first)
        except subprocess.CalledProcessError:
            print(f"error: the runtime set does not resolve for linux aarch64 CPython {python}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for python, wheels in result.items():
        print(f"linux aarch64 CPython {python}: {len(wheels)} wheels")
        for w in wheels:
            print(f"  {w['name']:<20} {w['version']:<10} {w['python']}-{w['platform']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
