"""``edgemri bench RUN``. Import only typer and the standard library at module level."""

from __future__ import annotations

import json
import sys

import typer

from edgemri.errors import UsageError


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise UsageError(f"{option} takes comma-separated integers, not {text!r}", f"e.g. {option} 1,2") from exc
    if not values:
        raise UsageError(f"{option} is empty", f"e.g. {option} 1,2")
    return values


def bench_command(
    run: str = typer.Argument(..., metavar="RUN", help="Run directory (with model.keras and export/)."),
    data: str | None = typer.Option(None, "--data", help="Labelled image folder to evaluate on "
                                       "(default: the run's own validation split)."),
    split: str = typer.Option("val", "--split", help="Split of the run to evaluate on when no --data: "
                              "val or test (the held-out one)."),
    targets: str | None = typer.Option(None, "--targets", help="Comma-separated targets "
                                          "(default: every artifact under RUN/export)."),
    threads: str = typer.Option("1", "--threads", help="Thread counts to measure, e.g. 1,2."),
    runs: int = typer.Option(50, "--runs", help="Timed runs per row, after warm-up."),
    warmup: int = typer.Option(5, "--warmup", help="Untimed warm-up runs per row."),
    max_images: int | None = typer.Option(None, "--max-images", help="Evaluate on at most N images "
                                             "(evenly spaced, deterministic)."),
    min_accuracy: float | None = typer.Option(None, "--min-accuracy", help="Gate: every row needs at "
                                                 "least this accuracy (fraction, e.g. 0.9). Exit 3 if not."),
    max_drop: float | None = typer.Option(None, "--max-drop", help="Gate: no artifact may lose more "
                                             "than this many accuracy points vs FP32. Exit 3 if not."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of a table."),
    out: str | None = typer.Option(None, "--out", help="Write report.{json,md,html} to this folder "
                                   "(default RUN/bench)."),
) -> None:
    """Measure accuracy, latency, memory and size of the FP32 model and every artifact.

    Each model runs in its own process. Writes RUN/bench/report.json, report.md and report.html.
    """
    from edgemri.bench.api import bench
    from edgemri.errors import GateError

    names = [t.strip() for t in targets.split(",") if t.strip()] if targets else None
    try:
        report = bench(run, data=data, targets=names, threads=_int_list(threads, "--threads"), runs=runs,
                       warmup=warmup, max_images=max_images, min_accuracy=min_accuracy, max_drop=max_drop,
                       split=split, out=out)
        gate_error = None
    except GateError as exc:  # the report was written: show it, then fail
        report, gate_error = exc.report or {}, exc
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        from edgemri.bench.report import print_table

        print_table(report)
        typer.echo(f"report: {out or f'{run}/bench'}/report.md, report.html, report.json")
    if gate_error is not None:
        raise gate_error


def compare_command(
    reports: list[str] = typer.Argument(..., metavar="RUN_OR_REPORT...", help="Benched run directories "
                                        "(or their report.json); LABEL=PATH names a row group."),
    out: str | None = typer.Option(None, "--out", help="Write the Markdown here (atomically) instead of "
                                   "printing it."),
    min_fp32_accuracy: float | None = typer.Option(None, "--min-fp32-accuracy", help="Aim: FP32 accuracy "
                                                   "at least this (fraction, e.g. 0.95)."),
    max_drop: float = typer.Option(1.0, "--max-drop", help="Aim: int8 accuracy within this many points of FP32 (either way)."),
    min_agreement: float = typer.Option(0.98, "--min-agreement", help="Aim: int8 top-1 agreement with FP32."),
    max_size_ratio: float = typer.Option(0.30, "--max-size-ratio", help="Aim: int8 size / FP32 TFLite size."),
    check: bool = typer.Option(False, "--check", help="Exit 3 if an aim is not met."),
) -> None:
    """Summarize several bench reports in one Markdown table, with the int8 aims checked."""
    from edgemri.atomic import write_text
    from edgemri.bench.compare import Aims, check_aims, load_report, to_markdown
    from edgemri.errors import GateError

    aims = Aims(max_drop, min_agreement, max_size_ratio, min_fp32_accuracy)
    loaded = []
    for item in reports:
        label, _, path = item.partition("=") if "=" in item else (None, "", item)
        loaded.append((label or None, load_report(path)))
    text = to_markdown(loaded, aims)
    if out:
        write_text(out, text)
        typer.echo(f"wrote {out}")
    else:
        typer.echo(text)
    missed = [f"{label or r.get('run')}: {aim}" for label, r in loaded
              for aim, _, ok in check_aims(r, aims) if ok is False]
    if check and missed:
        raise GateError(f"{len(missed)} aim(s) not met ({'; '.join(missed)})",
                        "See the table; loosen the aims only with a reason.")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the ``edgemri`` app."""
    app.command("bench")(bench_command)
    app.command("compare")(compare_command)
