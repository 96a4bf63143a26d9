"""Run ``edgemri predict`` under an emulated aarch64 Raspberry Pi and compare with this machine.

WHY: resolving aarch64 wheels proves the runtime installs on a Pi; this proves it *runs* there:
the aarch64 CPython from Debian bookworm, the aarch64 wheels of numpy, pillow, ai-edge-litert and
edgemri itself (no TensorFlow), executing the same tflite-int8 model on the same images. For an
int8-output model the probabilities must be identical (they are dequantized from the same int8
values); ``--tolerance`` exists for float-output models. Timings under emulation say nothing
about a Pi's latency: measure that on a Pi (docs/raspberry-pi.md).

Usage:
    python benchmarks/pi/run_check.py                          # tiny int8 model made here (needs TF)
    python benchmarks/pi/run_check.py MODEL.tflite IMAGE... [--board pi5] [--json-out report.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROBE = (
    "import json, platform, sys, importlib.util as u, importlib.metadata as m\n"
    "v = lambda d: m.version(d) if u.find_spec(d.replace('-', '_')) or d == 'pillow' else None\n"
    "print(json.dumps({'machine': platform.machine(), 'python': platform.python_version(),\n"
    "  'libc': platform.libc_ver(), 'tensorflow': u.find_spec('tensorflow') is not None,\n"
    "  'numpy': v('numpy'), 'pillow': v('pillow'), 'ai-edge-litert': v('ai-edge-litert'),\n"
    "  'edgemri': v('edgemri'), 'edgemri_origin': u.find_spec('edgemri').origin,\n"
    "  'cpu_model': [l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('Model')]}))\n"
)


class CheckError(RuntimeError):
    """A side of the check could not run; the message says which and why."""


def build_sysroot(board: str = "pi4", cache: Path | None = None) -> Path:
    """Run build_sysroot.sh (idempotent, cached) and return the sysroot path it prints."""
    env = dict(os.environ, PYTHON=os.environ.get("PYTHON", sys.executable))
    if cache:
        env["EDGEMRI_PI_CACHE"] = str(cache)
    proc = subprocess.run(["bash", str(HERE / "build_sysroot.sh"), "--board", board],
                          check=False, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise CheckError(f"build_sysroot.sh failed:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def _run(cmd: list[str], what: str, timeout: float = 900) -> tuple[str, float]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise CheckError(f"{what} exited {proc.returncode}: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return proc.stdout, wall


def predict_json(python: list[str], model: Path, images: list[Path], what: str) -> tuple[list[dict], float]:
    """``python -m edgemri.cli predict MODEL IMAGES --json --threads 1`` -> (records, wall seconds)."""
    cmd = python + ["-m", "edgemri.cli", "predict", str(model), *map(str, images), "--json", "--threads", "1"]
    out, wall = _run(cmd, what)
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if len(records) != len(images):
        raise CheckError(f"{what} printed {len(records)} predictions for {len(images)} images:\n{out[-2000:]}")
    return records, wall


def compare(ref: list[dict], emu: list[dict], tolerance: float) -> list[dict]:
    """Per image: label agreement and the largest absolute probability difference."""
    rows = []
    for a, b in zip(ref, emu):
        diff = max(abs(a["probabilities"][c] - b["probabilities"][c]) for c in a["probabilities"])
        rows.append({"image": Path(a["path"]).name, "x86_label": a["label"], "aarch64_label": b["label"],
                     "max_abs_diff": diff,
                     "ok": a["label"] == b["label"] and a["probabilities"].keys() == b["probabilities"].keys()
                     and diff <= tolerance})
    return rows


def check(model: Path, images: list[Path], sysroot: Path, tolerance: float = 0.0) -> dict:
    """Run both sides and return the report (``report["equal"]`` is the verdict)."""
    launcher = [str(sysroot / "python")]
    if not shutil.which(os.environ.get("QEMU", "qemu-aarch64-static")):
        raise CheckError("qemu-aarch64-static not found. Install it: apt-get install qemu-user-static")
    model, images = model.resolve(), [p.resolve() for p in images]
    probe_out, _ = _run(launcher + ["-c", PROBE], "emulated aarch64 python")
    target = json.loads(probe_out.strip().splitlines()[-1])
    if not target["edgemri_origin"].startswith(str(sysroot)):
        raise CheckError(f"the emulated python imports edgemri from {target['edgemri_origin']}, not the wheel")
    ref, ref_wall = predict_json([sys.executable], model, images, "x86 edgemri predict")
    emu, emu_wall = predict_json(launcher, model, images, "emulated aarch64 edgemri predict")
    rows = compare(ref, emu, tolerance)
    return {"model": str(model), "images": len(images), "tolerance": tolerance,
            "equal": all(r["ok"] for r in rows), "rows": rows, "target": target,
            "board": (sysroot / ".board").read_text().strip() if (sysroot / ".board").exists() else None,
            "wall_s": {"x86_predict": round(ref_wall, 2), "emulated_predict": round(emu_wall, 2)}}


def print_report(report: dict) -> None:
    t = report["target"]
    print(f"target: {t['machine']} CPython {t['python']} glibc {t['libc'][1]} ({', '.join(t['cpu_model']) or 'no Pi model in /proc/cpuinfo'}, emulated), "
          f"numpy {t['numpy']}, pillow {t['pillow']}, ai-edge-litert {t['ai-edge-litert']}, "
          f"edgemri {t['edgemri']}, tensorflow installed: {t['tensorflow']}")
    for r in report["rows"]:
        print(f"  {r['image']:<24} x86 {r['x86_label']:<12} aarch64 {r['aarch64_label']:<12} "
              f"max |dp| {r['max_abs_diff']:.6g}  {'ok' if r['ok'] else 'MISMATCH'}")
    w = report["wall_s"]
    print(f"wall: x86 predict {w['x86_predict']} s, emulated predict {w['emulated_predict']} s "
          "(emulated timings say nothing about a Pi's latency)")
    print("RESULT: " + ("identical within tolerance " if report["equal"] else "MISMATCH beyond tolerance ")
          + str(report["tolerance"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, help="tflite model (default: a tiny int8 one made here)")
    parser.add_argument("images", nargs="*", type=Path)
    parser.add_argument("--board", choices=("pi4", "pi5"), default="pi4", help="CPU to emulate (A72 / A76)")
    parser.add_argument("--sysroot", type=Path, help="use this sysroot instead of building/refreshing one")
    parser.add_argument("--tolerance", type=float, default=0.0, help="max |probability difference| (int8: 0)")
    parser.add_argument("--json-out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    if args.model is not None and not args.images:
        parser.error("give at least one IMAGE after MODEL")
    with tempfile.TemporaryDirectory(prefix="edgemri-pi-") as tmp:
        model, images = args.model, args.images
        if model is None:
            sys.path.insert(0, str(HERE))
            from make_tiny_model import make

            model, images = make(Path(tmp))
        try:
            start = time.perf_counter()
            sysroot = args.sysroot or build_sysroot(args.board)
            build_wall = time.perf_counter() - start
            report = check(model, images, sysroot, args.tolerance)
        except CheckError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    report["wall_s"]["sysroot_build"] = round(build_wall, 2)
    print_report(report)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
