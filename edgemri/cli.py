"""The ``edgemri`` command line.

Each area registers its own commands (``edgemri.data.cli``, ``edgemri.train.cli``, ...). Those
modules import only typer and the standard library at import time, so ``edgemri --help`` and
``edgemri predict`` never pay for TensorFlow. Every ``EdgemriError`` becomes one line on stderr
and a non-zero exit; ``--debug`` keeps the traceback. The root callback also quiets framework
start-up logs for this process and its children (``edgemri.quiet``) unless ``--debug``.
"""

from __future__ import annotations

import sys

import typer

from edgemri import quiet
from edgemri.errors import EdgemriError

app = typer.Typer(
    name="edgemri",
    help="Train a medical-image classifier, quantize and convert it for the edge, and measure what was lost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_STATE = {"debug": False}


def _version(value: bool) -> None:
    if value:
        from edgemri import __version__

        typer.echo(f"edgemri {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """edgemri: from training to a phone or a Raspberry Pi, with the numbers to prove it."""
    _STATE["debug"] = debug or quiet.debug_requested()
    # Before any command body imports a framework; exported, so worker processes get it too.
    quiet.configure(_STATE["debug"])


def _register_all() -> None:
    # Imports here must stay light: each module defers heavy imports into its command bodies.
    from edgemri import bundle, calibrate, pipeline
    from edgemri.bench import cli as bench_cli
    from edgemri.convert import cli as convert_cli
    from edgemri.data import cli as data_cli
    from edgemri.runtime import cli as runtime_cli
    from edgemri.train import cli as train_cli

    for module in (data_cli, train_cli, convert_cli, runtime_cli, bench_cli, bundle, pipeline, calibrate):
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> int:
    """Run the app and return its exit code; user errors become one line on stderr.

    The environment the root callback sets is restored on return, so in-process calls (tests)
    do not leak ``--debug`` into the next one.
    """
    with quiet.restored_env():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    try:
        app(args=argv, prog_name="edgemri")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except EdgemriError as exc:
        if _STATE["debug"]:
            raise
        typer.echo(f"error: {exc.one_line()}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    return 0


def run() -> None:  # pragma: no cover - console entry
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
