"""``edgemri data audit|synth|split``. Imports only typer and the standard library at module level."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

data_app = typer.Typer(
    name="data",
    help="Datasets: audit for duplicates and leakage, make synthetic data, write a split file.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

MASK_HELP = 'Glob (on file names) of mask files to ignore; "" keeps every image.'


@data_app.command("audit")
def audit_cmd(
    root: Annotated[Path, typer.Argument(help="Dataset folder: root/<class>/* or root/{train,val,test}/<class>/*.")],
    against: Annotated[Path | None, typer.Option("--against", help="A second dataset (e.g. the test set) to check for leakage into ROOT.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the full report (with the duplicate lists) as JSON.")] = None,
    fail_on_leak: Annotated[bool, typer.Option("--fail-on-leak", help="Exit 3 if duplicates span two splits.")] = False,
    near_threshold: Annotated[int, typer.Option("--near-threshold", help="Max dHash distance (of 256 bits) for a near-duplicate.")] = 16,
    mask_pattern: Annotated[str, typer.Option("--mask-pattern", help=MASK_HELP)] = "*_mask*",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table, only the verdict line.")] = False,
) -> None:
    """Counts, sizes, exact and near duplicates, label conflicts and a leakage verdict."""
    from edgemri.atomic import write_json
    from edgemri.data.audit import audit, check_threshold, render_table
    from edgemri.errors import GateError

    report = audit(root, against=against, mask_pattern=mask_pattern or None,
                   near_threshold=check_threshold(near_threshold), progress=sys.stderr.isatty())
    if json_path:
        write_json(json_path, report)
    if quiet:
        typer.echo(f"verdict: {report['verdict']} - {report['verdict_reason']}")
    else:
        render_table(report)
    if fail_on_leak and report["verdict"] == "leak":
        raise GateError(f"data leakage: {report['verdict_reason']}",
                        "Remove the duplicates from one side (see --json for the list)")


@data_app.command("synth")
def synth_cmd(
    out: Annotated[Path, typer.Argument(help="Folder to create: OUT/<class>/<class>_NNNN.png.")],
    task: Annotated[str, typer.Option("--task", help="brain4 | binary | busi3.")] = "brain4",
    per_class: Annotated[int, typer.Option("--per-class", help="Images per class.")] = 40,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels.")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same images, on any machine.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
) -> None:
    """Write a deterministic synthetic MRI-like (or ultrasound-like) dataset."""
    from edgemri.data.synth import TASKS, synthesize

    path = synthesize(out, task=task, per_class=per_class, size=size, seed=seed, overwrite=overwrite)
    typer.echo(f"wrote {per_class * len(TASKS[task])} images ({', '.join(TASKS[task])}) to {path}")


@data_app.command("split")
def split_cmd(
    root: Annotated[Path, typer.Argument(help="Dataset folder.")],
    out: Annotated[Path, typer.Option("--out", help="split.json to write.")],
    val: Annotated[float, typer.Option("--val", help="Fraction of each class for validation.")] = 0.15,
    test: Annotated[float, typer.Option("--test", help="Fraction of each class for test.")] = 0.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    group_pattern: Annotated[str | None, typer.Option(
        "--group-pattern",
        help=r"Regex with one group, searched in file names, giving a patient id: all its files share a split "
             r"(e.g. '^(P\d+)_').")] = None,
    group_duplicates: Annotated[bool, typer.Option(
        "--group-duplicates",
        help="Audit first and keep every cluster of exact/near duplicates in one split.")] = False,
    mask_pattern: Annotated[str, typer.Option("--mask-pattern", help=MASK_HELP)] = "*_mask*",
) -> None:
    """Deterministic stratified (optionally group-aware) split, with content hashes."""
    from edgemri.data.discover import discover
    from edgemri.data.split import make_split

    index = discover(root, mask_pattern or None)
    groups = None
    if group_duplicates:
        from edgemri.data.audit import duplicate_groups

        groups = duplicate_groups(index, progress=sys.stderr.isatty())
        typer.echo(f"{len(groups)} images in {len(set(groups.values()))} duplicate clusters kept together")
    split = make_split(index, val_fraction=val, test_fraction=test, seed=seed, group_pattern=group_pattern,
                       groups=groups)
    split.save(out)
    counts = ", ".join(f"{name} {sum(per.values())}" for name, per in split.counts().items())
    typer.echo(f"wrote {out}: {counts} (fingerprint {split.fingerprint[:12]})")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the ``edgemri`` app."""
    app.add_typer(data_app, name="data")
