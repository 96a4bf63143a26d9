"""CLI commands of this area: ``edgemri predict``.

Only typer and the standard library are imported at module level; the predictor (numpy, pillow,
one backend) is imported when the command runs, so ``edgemri --help`` stays instant and
``edgemri predict`` on a .tflite never touches TensorFlow, ONNX or OpenVINO.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer


def expand_images(inputs: list[Path]) -> list[Path]:
    """Files as given; directories expanded by ``find_images`` (recursive, sorted, hidden skipped)."""
    from edgemri.errors import DataError
    from edgemri.runtime.images import SUPPORTED_SUFFIXES, find_images

    out: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = find_images(item)
            if not found:
                raise DataError(f"directory {item} has no images",
                                f"Supported files: {', '.join(SUPPORTED_SUFFIXES)}")
            out.extend(found)
        elif item.exists():
            out.append(item)
        else:
            raise DataError(f"image {item} not found")
    return out


def predict(
    model: Annotated[Path, typer.Argument(help="Model file: .tflite, .onnx or .xml (OpenVINO IR).")],
    images: Annotated[list[Path], typer.Argument(help="Image files (jpg/png/bmp/tif/dcm) or directories.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per image instead of a table.")] = False,
    top: Annotated[int, typer.Option("--top", min=1, help="Show the K most probable classes.")] = 1,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Inference threads (default: engine's).")] = None,
    backend: Annotated[str | None, typer.Option("--backend",
                                                help="litert, onnxruntime or openvino (default: by suffix).")] = None,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed inferences before the first image.")] = 0,
    manifest: Annotated[Path | None, typer.Option("--manifest",
                                                  help="Manifest JSON (default: <model>.json, else embedded).")] = None,
    hints: Annotated[bool | None, typer.Option("--hints/--no-hints", help="Use the manifest's tuned runtime "
                                               "hints (edgemri tune; default: yes unless EDGEMRI_HINTS=0). "
                                               "--threads wins over the hinted threads.")] = None,
    precision: Annotated[str | None, typer.Option("--precision", help="OpenVINO inference precision: f32 "
                                                  "(default), bf16 or f16 (opt-in; other backends: "
                                                  "an error).")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip images that cannot be decoded (exit 0).")] = False,
    reject_ood: Annotated[bool, typer.Option("--reject-ood", help="Exit 3 when the out-of-distribution guard "
                                             "rejects any image.")] = False,
) -> None:
    """Classify images with an exported model (no TensorFlow needed).

    Files that cannot be decoded are reported one line each on stderr and the rest are still
    predicted; the exit code is 2 when any failed, unless --skip-bad. Each image gets the
    out-of-distribution guard's verdict (``guard off`` for a manifest without an ``ood`` section);
    with --reject-ood the exit code is 3 when any image was rejected.
    """
    from edgemri.errors import DataError, ImageDecodeError
    from edgemri.runtime.predictor import Predictor

    files = expand_images(images)
    predictor = Predictor.load(model, threads=threads, backend=backend, manifest=manifest, hints=hints,
                               precision=precision)
    predictor.warmup(warmup)
    results, failed = [], 0
    for path in files:
        try:
            pred = predictor.predict_one(path)
        except ImageDecodeError as exc:
            failed += 1
            typer.echo(f"{'skipped' if skip_bad else 'error'}: {exc.one_line()}", err=True)
            if as_json:
                typer.echo(json.dumps({"path": str(path), "error": exc.message}))
            continue
        results.append(pred)
        if as_json:
            typer.echo(json.dumps(pred.to_dict(top=top)))
    if not as_json and results:
        _print_table(results, top, predictor)
    if not results:
        raise DataError(f"none of the {len(files)} image(s) could be decoded")
    rejected = _guard_summary(results)
    if failed and not skip_bad:
        typer.echo(f"{failed} of {len(files)} image(s) failed", err=True)
        raise typer.Exit(code=2)
    if rejected and reject_ood:
        raise typer.Exit(code=3)


def _guard_summary(results: list) -> int:
    """One stderr line on the out-of-distribution guard (off, or how many it rejected)."""
    verdicts = [r.verdict for r in results if r.verdict is not None]
    if not verdicts or verdicts[0].in_distribution is None:
        typer.echo(f"out-of-distribution {verdicts[0].reason if verdicts else 'guard off'}", err=True)
        return 0
    rejected = sum(1 for v in verdicts if v.in_distribution is False)
    if rejected:
        typer.echo(f"out-of-distribution guard rejected {rejected} of {len(results)} image(s)", err=True)
    return rejected


def _print_table(results: list, top: int, predictor) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{predictor.path} ({runtime_label(predictor)}; {predictor.manifest_source})")
    table.add_column("image", overflow="fold")
    table.add_column("label")
    table.add_column("prob", justify="right")
    if top > 1:
        table.add_column(f"top {top}")
    table.add_column("ms (decode/prep/infer)", justify="right")
    table.add_column("in distribution", overflow="fold")
    for pred in results:
        t = pred.timings
        row = [_short(pred.path), pred.label, f"{pred.confidence:.3f}"]
        if top > 1:
            row.append(", ".join(f"{c} {p:.3f}" for c, p in pred.top(top)))
        row.append(f"{t['decode']:.1f}/{t['preprocess']:.1f}/{t['inference']:.1f}")
        row.append(_verdict_cell(pred.verdict))
        table.add_row(*row)
    console = Console(file=sys.stdout)
    if not console.is_terminal:  # piped: do not squeeze paths into 80 columns
        console = Console(file=sys.stdout, width=200)
    console.print(table)


def _verdict_cell(verdict) -> str:
    """``yes`` / ``NO: <reason>`` / ``guard off`` for the table."""
    if verdict is None or verdict.in_distribution is None:
        return "guard off"
    return "yes" if verdict.in_distribution else f"NO: {verdict.reason}"


def runtime_label(predictor) -> str:
    """"litert, 1 thread, xnnpack off, hints: used": how the model ran, reduced precision named."""
    info = predictor.engine.info()
    parts = [predictor.backend]
    if info.get("threads"):
        parts.append(f"{info['threads']} thread{'s' if info['threads'] > 1 else ''}")
    for key, value in (info.get("options") or {}).items():
        if key == "precision":
            if value != "f32":
                parts.append(f"{value} precision (opt-in, computes {info.get('inference_precision', value)})")
        else:
            parts.append(f"{key} {'on' if value is True else 'off' if value is False else value}")
    runtime = getattr(predictor, "runtime", None)
    if runtime is not None:
        parts.append(f"hints: {runtime.hints}")
        if runtime.tuned_elsewhere:
            parts.append(f"tuned on {runtime.tuned_elsewhere}, not this CPU (retune: edgemri tune)")
    return ", ".join(parts)


def _short(path: str | None) -> str:
    """A path relative to the working directory when it is below it."""
    if path is None:
        return "<array>"
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the ``edgemri`` app."""
    app.command("predict")(predict)
