"""``edgemri demo``: the main job, end to end, on the embedded synthetic default.

It runs exactly the commands a user would type (and prints each one first), so the demo is also
the shortest tutorial: synthesize data, train, quantization-aware fine-tune, convert to every
target, benchmark against the full-precision model, and bundle the int8 model for a device.

Each stage is a fresh ``python -m edgemri ...`` process, not a call back into this one: what is
printed is what runs, global flags (``--debug``) reach every stage, and one stage's imports
(Keras 2 for QAT, a backend's threads) cannot change the next. This module does not import
``edgemri.cli``.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import typer

from edgemri import quiet
from edgemri.errors import RunError, UsageError


@dataclass(frozen=True)
class Stage:
    """One step of the main job: a name and the CLI arguments that run it."""

    name: str
    argv: list[str]
    optional: bool = False  # a failure is reported but does not stop the job
    ok_codes: tuple[int, ...] = (0,)  # exit codes that let the job go on

    def command(self, debug: bool = False) -> list[str]:
        """The ``edgemri`` arguments that run this stage, global flags first."""
        return ["--debug", *self.argv] if debug else list(self.argv)


#: The recipe the demo trains (train/recipes/demo.toml): it reaches >= 95% FP32 on the synthetic task.
DEMO_RECIPE = "demo"


def plan(out: Path, task: str, arch: str | None, image_size: int | None, per_class: int, epochs: int | None,
         qat_epochs: int, targets: str, seed: int, recipe: str = DEMO_RECIPE) -> list[Stage]:
    """The stages of the main job, in order.

    Training runs ``--recipe``; ``arch``, ``image_size`` and ``epochs`` are passed on only when
    given (None: the recipe's), so the printed command shows exactly what overrides the recipe.
    """
    data, run = out / "data", out / "run"
    size = image_size if image_size is not None else _recipe_image_size(recipe)
    given = [("--arch", arch), ("--image-size", image_size), ("--epochs", epochs)]
    stages = [
        Stage("synthesize data", ["data", "synth", str(data), "--task", task, "--per-class", str(per_class),
                                  "--size", str(max(size, 64)), "--seed", str(seed), "--overwrite"]),
        Stage("audit data", ["data", "audit", str(data), "--json", str(out / "audit.json")]),
        Stage("train", ["train", "--recipe", recipe, "--data", str(data),
                        *[a for flag, value in given if value is not None for a in (flag, str(value))],
                        "--seed", str(seed), "--out", str(run), "--overwrite"]),
    ]
    if qat_epochs > 0:
        stages.append(Stage("quantization-aware fine-tuning", ["qat", str(run), "--epochs", str(qat_epochs)]))
    stages += [
        # exit 3 = converted but failed verification: the benchmark report shows it, so go on
        Stage("convert", ["convert", str(run), *[a for t in targets.split(",") for a in ("--target", t.strip())]],
              ok_codes=(0, 3)),
        Stage("benchmark", ["bench", str(run), "--threads", "1", "--runs", "20"]),
        Stage("bundle for a device", ["bundle", str(run), "--target", "tflite-int8", "--out",
                                      str(out / "bundle")], optional=True),
    ]
    return stages


def _recipe_image_size(recipe: str) -> int:
    """The image size the recipe trains at (the synthetic images are made at least that large)."""
    from edgemri.train.config import default
    from edgemri.train.recipes import load

    return int(load(recipe).values.get("image_size", default("image_size")))


def run_stage(stage: Stage, index: int, total: int, debug: bool = False) -> tuple[int, float]:
    """Run one stage as its own ``edgemri`` process; return its exit code and seconds."""
    argv = stage.command(debug)
    typer.secho(f"\n[{index}/{total}] {stage.name}", bold=True)
    typer.echo(f"$ edgemri {shlex.join(argv)}")
    sys.stdout.flush()  # this header before the child's own output
    start = time.perf_counter()
    code = execute(argv)
    return code, time.perf_counter() - start


def execute(argv: list[str]) -> int:
    """``edgemri ARGV`` in a new process of this interpreter (output straight to the terminal)."""
    return subprocess.run([sys.executable, "-m", "edgemri", *argv], check=False).returncode


def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", help="Folder for the data, the run and its reports."),
    task: str = typer.Option("brain4", "--task", help="Synthetic task: brain4, binary or busi3."),
    recipe: str = typer.Option(DEMO_RECIPE, "--recipe", help="Training recipe, a name (edgemri recipes) or a "
                               ".toml path; the three options below override it."),
    arch: str | None = typer.Option(None, "--arch", help="Architecture to train (default: the recipe's; see "
                                       "edgemri train --help)."),
    image_size: int | None = typer.Option(None, "--image-size", help="Square input size in pixels (default: the "
                                             "recipe's)."),
    per_class: int = typer.Option(100, "--per-class", help="Synthetic images per class."),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs (default: the recipe's)."),
    qat_epochs: int = typer.Option(1, "--qat-epochs", help="QAT fine-tuning epochs (0 skips QAT)."),
    targets: str = typer.Option("all", "--targets", help="Comma-separated conversion targets."),
    seed: int = typer.Option(0, "--seed", help="Seed for data, split and training."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder."),
) -> None:
    """Run the whole path on synthetic data: synth, audit, train, QAT, convert, bench, bundle."""
    stages = plan(out, task, arch, image_size, per_class, epochs, qat_epochs, targets, seed, recipe)  # bad recipe: here
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UsageError(f"{out} already exists", "Pass --overwrite to replace it, or choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    debug = quiet.debug_requested()  # the root callback exports --debug as EDGEMRI_DEBUG=1
    timings: list[tuple[str, float, int]] = []
    for i, stage in enumerate(stages, 1):
        code, seconds = run_stage(stage, i, len(stages), debug)
        timings.append((stage.name, seconds, code))
        if code not in stage.ok_codes and not stage.optional:
            raise RunError(f"demo stopped: stage '{stage.name}' exited with {code}",
                           f"Re-run it alone to see why: edgemri {shlex.join(stage.command(debug))}")
    _summary(out, timings)


def _summary(out: Path, timings: list[tuple[str, float, int]]) -> None:
    typer.secho("\nmain job finished", bold=True)
    for name, seconds, code in timings:
        note = {0: "ok", 3: "ok, but some artifact failed verification (see the report)"}.get(code, f"exit {code}")
        typer.echo(f"  {name:<32} {seconds:7.1f} s  {note}")
    report = out / "run" / "bench" / "report.md"
    if report.is_file():
        typer.echo(f"\nbenchmark report: {report} (and report.html beside it)")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
