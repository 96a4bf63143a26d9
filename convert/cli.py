"""``edgemri convert``, ``edgemri qat`` and ``edgemri inspect``. Module level: typer + stdlib only.

``--target`` choices, their descriptions and the ``--min-agreement`` defaults are read from the
target registry (``TARGETS``, which imports no converter), ``--calib``'s default from calibration.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer

from edgemri.convert.calibration import DEFAULT_CALIB_IMAGES, MIN_RECOMMENDED
from edgemri.convert.targets import ALL, DEFAULT_IO, IO_TYPES, TARGETS


def _target_help() -> str:
    """Every registered target with its one-line description."""
    rows = "; ".join(f"{t.name}: {t.description}" for t in TARGETS.entries())
    return f"Target, repeatable: {rows}; or {ALL} (every target)."


def _min_agreement_help() -> str:
    """The per-target agreement gates, as the registry sets them."""
    def gates(quantized: bool) -> str:
        values = sorted({t.min_agreement for t in TARGETS.entries() if t.quantized == quantized})
        return "/".join(f"{v:g}" for v in values)

    return (f"Top-1 agreement with the FP32 model every target must reach (default: per target, {gates(False)} "
            f"for float ones, {gates(True)} for quantized ones).")


def _logging() -> None:
    """INFO lines (calibration counts, quantization params) to stderr, once."""
    log = logging.getLogger("edgemri.convert")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def convert_command(
    run: Path = typer.Argument(..., help="Run directory (from edgemri train)."),
    target: list[str] = typer.Option(..., "--target", "-t", help=_target_help()),
    calib: int = typer.Option(DEFAULT_CALIB_IMAGES, "--calib", help="Calibration images (stratified from the "
                              f"train split; fewer than {MIN_RECOMMENDED} gives a warning)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset."),
    nchw: bool = typer.Option(False, "--nchw", help="ONNX: channel-first input (manifest layout NCHW)."),
    per_tensor: bool = typer.Option(False, "--per-tensor", help="Per-tensor weight quantization (NNAPI/NPUs)."),
    ov_fp16: bool = typer.Option(False, "--ov-fp16", help="OpenVINO: compress weights to float16."),
    min_agreement: float | None = typer.Option(None, "--min-agreement", help=_min_agreement_help()),
    io: str = typer.Option(DEFAULT_IO, "--io", help=f"Input/output type of the full-integer TFLite targets: "
                           f"{'|'.join(IO_TYPES)} (int8 inside either way; uint8 is what MediaPipe Tasks and "
                           "the Android ML binding accept, float32 keeps float I/O)."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip verification on the val split."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of a table."),
) -> None:
    """Convert a trained run to edge formats, each verified against the FP32 Keras model."""
    from edgemri.convert.targets import resolve

    resolve(list(target))  # an unknown name is one line before any converter (or TensorFlow) loads
    if io not in IO_TYPES:
        from edgemri.errors import UsageError

        raise UsageError(f"unknown --io {io!r}", f"Choose from: {', '.join(IO_TYPES)}")
    from edgemri.convert.api import convert

    _logging()
    results = convert(run, list(target), calib=calib, opset=opset, nchw=nchw, per_tensor=per_tensor,
                      verify=not no_verify, min_agreement=min_agreement, ov_fp16=ov_fp16, io=io)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        _results_table(results)
    failed = [r for r in results if r.status != "ok"]
    if failed:
        for r in failed:
            typer.echo(f"error: {r.target} {r.status}: {r.reason}", err=True)
        raise typer.Exit(3 if all(r.status == "failed-verification" for r in failed) else 2)


def _results_table(results: list) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="edgemri convert")
    for col in ("target", "status", "size", "accuracy", "Δ vs fp32", "top-1 agree", "max |Δp|", "artifact"):
        table.add_column(col, justify="right" if col not in ("target", "status", "artifact") else "left")
    for r in results:
        v = r.verification or {}

        def fmt(key: str, spec: str, v: dict = v) -> str:
            return spec.format(v[key]) if v.get(key) is not None else "-"

        table.add_row(r.target, r.status, f"{r.size_bytes / 1024:.1f} KiB" if r.size_bytes else "-",
                      fmt("accuracy", "{:.4f}"), fmt("accuracy_delta", "{:+.4f}"), fmt("top1_agreement", "{:.4f}"),
                      fmt("max_prob_diff", "{:.2e}"), str(r.path) if r.path else (r.reason or ""))
    Console(file=sys.stdout, width=160).print(table)


def qat_command(
    run: Path = typer.Argument(..., help="Run directory (from edgemri train)."),
    epochs: int = typer.Option(2, "--epochs", help="Fine-tuning epochs of the quantization-aware model."),
    lr: float = typer.Option(1e-5, "--lr", help="Learning rate (low: QAT fine-tunes, it does not retrain)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Images per batch."),
    distill: float = typer.Option(1.0, "--distill", help="0..1: weight of the FP32 model's own probabilities "
                                  "in the targets (1 = copy FP32: highest int8 agreement with FP32; 0 = labels)."),
) -> None:
    """Quantization-aware fine-tuning (tfmot, in a tf_keras subprocess) -> RUN/qat/."""
    from edgemri.convert.qat import run_qat

    _logging()
    metrics = run_qat(run, epochs=epochs, lr=lr, batch_size=batch_size, distill=distill)
    typer.echo(f"QAT: fp32 val accuracy {metrics['fp32_val_accuracy']:.4f} -> QAT {metrics['qat_val_accuracy']:.4f} "
               f"({metrics['qat_val_accuracy'] - metrics['fp32_val_accuracy']:+.4f}); wrote {metrics['saved_model']}")


def inspect_command(
    model: Path = typer.Argument(..., help="A .tflite, .onnx or .xml (OpenVINO IR) file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Ops, I/O, quantization, size, and what will not run on stock LiteRT / NNAPI."""
    from edgemri.convert.inspect import inspect_model

    info = inspect_model(model)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"{info['path']}  ({info['format']}, {info['size_bytes'] / 1024:.1f} KiB)")
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            q = t.get("quantization")
            qs = f"  scale={q['scale']:.6g} zero_point={q['zero_point']}" if q and "scale" in q else ""
            typer.echo(f"  {kind[:-1]:6} {t['name']}: {t['dtype']} {t['shape']}{qs}")
    typer.echo("  ops: " + ", ".join(f"{k} x{v}" for k, v in info["op_counts"].items()))
    for flag in info["flags"] or ["ok: builtin ops only"]:
        typer.echo(f"  {'!' if info['flags'] else ' '} {flag}")
    if "mediapipe" in info:
        _print_metadata(info)


def _print_metadata(info: dict) -> None:
    """TFLite: which standard metadata the file carries and what MediaPipe Tasks still needs."""
    meta = info["metadata"]
    if meta is None:
        typer.echo("  metadata: none (no TFLite Model Metadata)")
    else:
        norm = (meta["inputs"] or [{}])[0].get("normalization")
        norm_s = f", normalization mean={norm['mean'][0]:.6g} std={norm['std'][0]:.6g}" if norm else ""
        typer.echo(f"  metadata: {meta['name']!r} {meta['version']}{norm_s}; files: "
                   f"{', '.join(meta['associated_files']) or '-'}")
    for problem in info["mediapipe"] or ["ok: loads in MediaPipe Tasks' ImageClassifier"]:
        typer.echo(f"  {'!' if info['mediapipe'] else ' '} MediaPipe: {problem}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the ``edgemri`` app."""
    app.command("convert")(convert_command)
    app.command("qat")(qat_command)
    app.command("inspect")(inspect_command)
