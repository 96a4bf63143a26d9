"""int8 vs fp32 latency per run, on this machine: the table behind issue 14's first aim.

For each run directory (with ``export/tflite-fp32`` beside its int8 files: ``edgemri convert RUN
--target tflite-fp32`` remakes it for a published run) this runs ``edgemri tune RUN --no-write
--json`` once, so every artifact of a run is measured in one process, minutes apart at most, and
prints one Markdown row per int8 artifact: the fastest matching configuration of fp32 and of int8,
the int8 time under the hints its manifest records, and the ratios to fp32's best.

    python benchmarks/int8_vs_fp32.py RUN... [--threads 1,2] [--runs 50] [--warmup 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

FP32, INT8 = "tflite-fp32", ("tflite-int8", "tflite-int8-ptq")


def tune(run: Path, threads: str, runs: int, warmup: int, edgemri: str) -> dict[str, dict[str, Any]]:
    """Artifact name (export/<name>) -> its tune result."""
    out = subprocess.run([edgemri, "tune", str(run), "--no-write", "--json", "--threads", threads,
                          "--runs", str(runs), "--warmup", str(warmup)], check=True, capture_output=True, text=True)
    return {Path(r["path"]).parent.name: r for r in json.loads(out.stdout)}


def config_name(candidate: dict[str, Any]) -> str:
    xnn = "XNNPACK" if candidate["options"].get("xnnpack", True) else "builtin"
    return f"{candidate['threads']}t {xnn}"


def hinted(run: Path, name: str, result: dict[str, Any]) -> dict[str, Any] | None:
    """The candidate the artifact's recorded hints select on this CPU (None: the manifest has no hints).

    The entry tuned on this CPU model when the manifest has one (``runtime.machines``), else the
    top level: what ``Predictor.load`` runs.
    """
    from dataclasses import fields

    from edgemri.bench.machine import cpu_isa, cpu_model
    from edgemri.runtime.manifest import RuntimeHints

    sidecar = run / "export" / name / "model.tflite.json"
    data = json.loads(sidecar.read_text()).get("runtime") if sidecar.is_file() else None
    if not isinstance(data, dict):
        return None
    known = {f.name for f in fields(RuntimeHints)}
    chosen = RuntimeHints(**{k: v for k, v in data.items() if k in known}).for_cpu(cpu_model(), cpu_isa())
    for c in result["candidates"]:
        if c["threads"] == chosen.threads and c["options"] == (chosen.options or {}):
            return c
    return None


def rows(run: Path, results: dict[str, dict[str, Any]]) -> list[str]:
    if FP32 not in results:
        sys.exit(f"{run} has no export/{FP32}: run `edgemri convert {run} --target {FP32}` first")
    fp32 = results[FP32]["winner"]
    out = []
    for name in INT8:
        if name not in results:
            continue
        best, hint = results[name]["winner"], hinted(run, name, results[name])
        hint_ms = f"{hint['p50_ms']:.2f} ({config_name(hint)})" if hint else "no hints"
        ratio_hint = f"{hint['p50_ms'] / fp32['p50_ms']:.2f}x" if hint else "–"
        out.append(f"| {run.name} | {name} | {fp32['p50_ms']:.2f} ({config_name(fp32)}) | "
                   f"{best['p50_ms']:.2f} ({config_name(best)}) | **{best['p50_ms'] / fp32['p50_ms']:.2f}x** | "
                   f"{hint_ms} | {ratio_hint} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", dest="n", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--edgemri", default=str(Path(sys.executable).parent / "edgemri"))
    args = parser.parse_args()
    header = False
    for run in args.runs:
        results = tune(run, args.threads, args.n, args.warmup, args.edgemri)
        if not header:
            print(f"machine: {machine(results)}; p50 ms, batch 1, {args.n} runs after {args.warmup} warm-ups, "
                  f"threads {args.threads}\n")
            print_header()
            header = True
        for row in rows(run, results):
            print(row, flush=True)


def machine(results: dict[str, dict[str, Any]]) -> str:
    m = next(iter(results.values()))["measured"]["machine"]
    from edgemri.bench.machine import machine_name

    return f"{machine_name(m)}, {m['arch']}, {m['cores_usable']} usable cores"


def print_header() -> None:
    print("| run | int8 artifact | fp32 best (config) | int8 best (config) | int8 / fp32 | int8 under its recorded "
          "hints | hinted / fp32 best |")
    print("|---|---|---|---|---|---|---|")


if __name__ == "__main__":
    main()
