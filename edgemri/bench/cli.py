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
    tune_first: bool = typer.Option(False, "--tune", help="Run edgemri tune on the artifacts first (same "
                                    "--threads), writing their runtime hints; the report shows winner and losers."),
    ood_data: list[str] = typer.Option([], "--ood-data", help="Image folder the model was NOT trained on "
                                       "(repeatable), e.g. BUSI for a brain model: the report shows the share "
                                       "its out-of-distribution guard flags (synthetic noise is always tried)."),
) -> None:
    """Measure accuracy, latency, memory and size of the FP32 model and every artifact.

    Each model runs in its own process. Writes RUN/bench/report.json, report.md and report.html.
    Artifacts run with their manifest's runtime hints (EDGEMRI_HINTS=0: engine defaults).
    """
    from edgemri.bench.api import bench
    from edgemri.errors import GateError

    names = [t.strip() for t in targets.split(",") if t.strip()] if targets else None
    if tune_first:
        _tune_run(run, names, _int_list(threads, "--threads"))
    try:
        report = bench(run, data=data, targets=names, threads=_int_list(threads, "--threads"), runs=runs,
                       warmup=warmup, max_images=max_images, min_accuracy=min_accuracy, max_drop=max_drop,
                       split=split, out=out, ood_data=list(ood_data) or None)
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


def tune_command(
    target: str = typer.Argument(..., metavar="ARTIFACT|RUN", help="A model file (.tflite/.onnx/.xml) or a "
                                 "run directory (every artifact under RUN/export)."),
    threads: str | None = typer.Option(None, "--threads", help="Thread counts to try, e.g. 1,2 "
                                       "(default: 1..usable cores, at most 4)."),
    runs: int = typer.Option(50, "--runs", help="Timed runs per configuration, after warm-up (p50)."),
    warmup: int = typer.Option(5, "--warmup", help="Untimed warm-up runs per configuration."),
    images: int = typer.Option(8, "--images", help="Images for the output check (the run's val split, "
                               "else synthetic)."),
    min_agreement: float = typer.Option(0.98, "--min-agreement", help="Top-1 agreement with the default "
                                        "configuration a configuration needs to win."),
    write: bool = typer.Option(True, "--write/--no-write", help="Record the winner as the manifest's runtime "
                               "hints (sidecar + embedded) and write tune.json beside the artifact."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of tables."),
) -> None:
    """Find each artifact's fastest runtime configuration on this machine and record it as hints.

    Tries every configuration its backend has (LiteRT XNNPACK on/off, ONNX Runtime graph
    optimization, OpenVINO LATENCY/THROUGHPUT) at each thread count; a configuration wins only
    when its outputs match the default configuration's. predict / Predictor use the hints by default.
    """
    from edgemri.bench.tune import tune

    counts = _int_list(threads, "--threads") if threads else None
    results = tune(target, threads=counts, runs=runs, warmup=warmup, n_images=images,
                   min_agreement=min_agreement, write=write)
    if as_json:
        sys.stdout.write(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
        return
    for result in results:
        _print_tune(result)


def _tune_run(run: str, names: list[str] | None, threads: list[int]) -> None:
    """``bench --tune``: tune the artifacts about to be benched (all of RUN/export, or --targets)."""
    from pathlib import Path

    from edgemri.bench.inputs import find_artifact
    from edgemri.bench.tune import artifacts_of, tune

    paths = artifacts_of(Path(run)) if not names else \
        [a for n in names if (a := find_artifact(Path(run) / "export" / n)) is not None]
    for path in paths:
        for result in tune(path, threads=threads):
            winner = result.winner
            typer.echo(f"tune {path}: {winner.label() if winner else 'no matching configuration'}", err=True)


def _print_tune(result) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table as RichTable

    from edgemri.bench.machine import machine_name
    from edgemri.bench.tune import TABLE_HEADER, table_rows

    console = Console(width=None if sys.stdout.isatty() else 160)
    m = result.measured.get("machine") or {}
    table = RichTable(title=f"{result.path} ({result.backend}, {result.kind})",
                      caption=escape(f"{machine_name(m)}, {m.get('cores_usable')} usable cores; "
                                     f"{result.measured.get('protocol')}"), caption_justify="left")
    for col in TABLE_HEADER:
        table.add_column(col, justify="left" if col in ("configuration", "result", "why") else "right")
    for row in table_rows(result):
        table.add_row(*row, style="bold green" if row[6] == "WINNER" else None)
    console.print(table)
    winner = result.winner
    if winner is None:
        console.print("no configuration matched the default's outputs: no hints written", style="red")
    elif result.written:
        console.print(f"hints ({winner.label()}) written to {', '.join(result.written)}", highlight=False)
    else:
        console.print(f"winner: {winner.label()} (--no-write: nothing written)", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the ``edgemri`` app."""
    app.command("bench")(bench_command)
    app.command("compare")(compare_command)
    app.command("tune")(tune_command)
