"""The CLI shell: help, version, one-line errors, did-you-mean, --debug."""

from __future__ import annotations

import pytest

from edgemri import __version__
from edgemri.cli import app, main
from edgemri.errors import DataError


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "edgemri" in out
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command_suggests(capsys):
    assert main(["predcit"]) != 0
    err = capsys.readouterr().err
    assert "No such command" in err


def test_user_error_is_one_line_and_debug_raises(capsys):
    @app.command("_boom", hidden=True)
    def _boom() -> None:
        raise DataError("folder x has no class folders", "Arrange images as ROOT/<class>/*.png")

    assert main(["_boom"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: folder x has no class folders. Arrange images as ROOT/<class>/*.png"
    assert "Traceback" not in err
    with pytest.raises(DataError):
        main(["--debug", "_boom"])
