"""The main job end to end (``edgemri demo``): every stage is a real ``edgemri`` command, run as its own process."""

from __future__ import annotations

import inspect
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from edgemri import pipeline, quiet
from edgemri.cli import app, main
from edgemri.data.discover import discover
from edgemri.pipeline import Stage, plan, run_stage


def test_plan_covers_every_stage(tmp_path):
    names = [s.name for s in plan(tmp_path, "brain4", "simple-cnn", 32, 10, 1, 1, "all", 0)]
    assert names[0] == "synthesize data" and "train" in names and "convert" in names
    assert "quantization-aware fine-tuning" in names and names.index("benchmark") > names.index("convert")
    no_qat = [s.name for s in plan(tmp_path, "brain4", "simple-cnn", 32, 10, 1, 0, "all", 0)]
    assert "quantization-aware fine-tuning" not in no_qat


def parse(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Parse ``edgemri ARGV`` with the real app, without running it: (command path, the leaf's params).

    Unknown commands and options, missing arguments and bad values fail here as they would for a user.
    """
    cmd = typer.main.get_command(app)
    ctx = cmd.context_class(cmd, info_name="edgemri")
    args, path = list(argv), []
    while hasattr(cmd, "get_command"):  # a group: global flags, then a sub-command name
        while args and args[0].startswith("-"):
            flag = args.pop(0)
            assert flag in {opt for param in cmd.params for opt in param.opts}, f"{flag} is not an option of {path}"
        name = args.pop(0)
        sub = cmd.get_command(ctx, name)
        assert sub is not None, f"edgemri {' '.join(path)} has no command {name!r}"
        path.append(name)
        ctx = (sub.context_class(sub, info_name=name, parent=ctx) if hasattr(sub, "get_command")
               else sub.make_context(name, args, parent=ctx))
        cmd = sub
    return path, ctx.params


def test_every_stage_is_the_command_a_user_types(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    stages = plan(tmp_path, "binary", "simple-cnn", 32, 12, 2, 1, "tflite-int8, onnx", 7)
    assert [(s.name, s.argv) for s in stages] == [
        ("synthesize data", ["data", "synth", str(data), "--task", "binary", "--per-class", "12", "--size", "64",
                             "--seed", "7", "--overwrite"]),
        ("audit data", ["data", "audit", str(data), "--json", str(tmp_path / "audit.json")]),
        ("train", ["train", "--recipe", "demo", "--data", str(data), "--arch", "simple-cnn", "--image-size", "32",
                   "--epochs", "2", "--seed", "7", "--out", str(run), "--overwrite"]),
        ("quantization-aware fine-tuning", ["qat", str(run), "--epochs", "1"]),
        ("convert", ["convert", str(run), "--target", "tflite-int8", "--target", "onnx"]),
        ("benchmark", ["bench", str(run), "--threads", "1", "--runs", "20"]),
        ("bundle for a device", ["bundle", str(run), "--target", "tflite-int8", "--out", str(tmp_path / "bundle")]),
    ]
    assert [(s.optional, s.ok_codes) for s in stages if s.optional or s.ok_codes != (0,)] == [
        (False, (0, 3)), (True, (0,))]  # convert goes on past a failed verification; bundle may fail
    for stage in stages:
        path, _ = parse(stage.command(debug=True))
        assert path == stage.argv[:len(path)]
    assert parse(stages[2].argv)[1]["epochs"] == 2 and parse(stages[4].argv)[1]["target"] == ["tflite-int8", "onnx"]


def test_by_default_the_demo_trains_its_recipe_unchanged(tmp_path, monkeypatch):
    """No --arch/--image-size/--epochs: the train stage is the recipe alone (what reaches >= 95% FP32)."""
    from edgemri.train import cli as train_cli
    from edgemri.train import recipes

    stages = {s.name: s for s in plan(tmp_path, "brain4", None, None, 100, None, 1, "all", 0)}
    train = stages["train"].argv
    assert train == ["train", "--recipe", pipeline.DEMO_RECIPE, "--data", str(tmp_path / "data"), "--seed", "0",
                     "--out", str(tmp_path / "run"), "--overwrite"]
    recipe = recipes.load(pipeline.DEMO_RECIPE)
    synth = stages["synthesize data"].argv
    assert synth[synth.index("--size") + 1] == str(max(64, recipe.values["image_size"]))
    seen = []
    monkeypatch.setattr(train_cli, "_run", lambda cfg, resume=False: seen.append(cfg))
    assert main(train) == 0  # the printed command, resolved by the real CLI (no training)
    assert seen[0].recipe == "demo" and seen[0].arch == recipe.values["arch"] == "simple-cnn"
    assert seen[0].epochs == recipe.values["epochs"] and seen[0].image_size == recipe.values["image_size"]
    defaults = {name: p.default.default for name, p in inspect.signature(pipeline.demo).parameters.items()}
    assert defaults["recipe"] == pipeline.DEMO_RECIPE
    assert defaults["arch"] is defaults["image_size"] is defaults["epochs"] is None


def test_demo_with_a_bad_recipe_stops_before_touching_out(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert main(["demo", "--out", str(tmp_path), "--overwrite", "--recipe", "no-such-recipe"]) == 2
    assert "unknown recipe" in capsys.readouterr().err and (tmp_path / "keep.txt").exists()


def test_parse_rejects_what_a_user_could_not_type():
    with pytest.raises(AssertionError, match="no command"):
        parse(["trian", "--epochs", "1"])
    with pytest.raises(Exception, match="No such option"):
        parse(["bench", "run", "--thread", "1"])


class FakeStages:
    """Stands in for the stage processes: records each command line, answers with a chosen exit code."""

    def __init__(self, codes: dict[str, int] | None = None):
        self.codes, self.calls = codes or {}, []

    def __call__(self, argv: list[str]) -> int:
        self.calls.append(argv)
        command = [a for a in argv if a != "--debug"]
        return next((code for prefix, code in self.codes.items() if command[0] == prefix), 0)


DEMO = ["demo", "--arch", "simple-cnn", "--image-size", "32", "--per-class", "4", "--epochs", "1",
        "--targets", "tflite-int8"]


@pytest.mark.parametrize("debug", [False, True])
def test_demo_runs_each_stage_as_printed_and_forwards_debug(tmp_path, capsys, monkeypatch, debug):
    monkeypatch.delenv(quiet.DEBUG_VAR, raising=False)
    fake = FakeStages({"convert": 3, "bundle": 1})  # verification failed: go on; bundle is optional
    monkeypatch.setattr(pipeline, "execute", fake)
    out = tmp_path / "demo"
    assert main([*(["--debug"] if debug else []), *DEMO, "--out", str(out)]) == 0
    stages = plan(out, "brain4", "simple-cnn", 32, 4, 1, 1, "tflite-int8", 0)
    expected = [(["--debug"] if debug else []) + s.argv for s in stages]
    assert fake.calls == expected
    printed = capsys.readouterr().out
    assert [line[2:] for line in printed.splitlines() if line.startswith("$ ")] == \
        [f"edgemri {shlex.join(argv)}" for argv in expected]
    assert "ok, but some artifact failed verification" in printed and "exit 1" in printed
    assert quiet.DEBUG_VAR not in os.environ


def test_demo_stops_at_a_failed_stage_with_the_command_to_rerun(tmp_path, capsys, monkeypatch):
    fake = FakeStages({"train": 1})
    monkeypatch.setattr(pipeline, "execute", fake)
    assert main([*DEMO, "--out", str(tmp_path / "demo")]) == 2
    assert [argv[0] for argv in fake.calls] == ["data", "data", "train"]
    err = capsys.readouterr().err
    assert "demo stopped: stage 'train' exited with 1" in err and f"edgemri {shlex.join(fake.calls[-1])}" in err


def test_stages_really_run_as_edgemri_processes(tmp_path, capsys, monkeypatch):
    """The first two stages, for real: a child ``python -m edgemri`` each, --debug accepted."""
    monkeypatch.delenv(quiet.DEBUG_VAR, raising=False)
    synth, audit = plan(tmp_path, "binary", "simple-cnn", 32, 3, 1, 0, "onnx", 0)[:2]
    assert run_stage(synth, 1, 2)[0] == 0
    assert discover(tmp_path / "data").counts() == {"notumor": 3, "tumor": 3}
    assert run_stage(audit, 2, 2, debug=True)[0] == 0
    assert json.loads((tmp_path / "audit.json").read_text())["verdict"] in ("clean", "risk", "leak")
    assert f"$ edgemri --debug {shlex.join(audit.argv)}" in capsys.readouterr().out
    assert run_stage(Stage("bad", ["data", "audit", str(tmp_path / "nope")]), 1, 1)[0] == 2


def test_pipeline_does_not_import_the_cli():
    source = Path(pipeline.__file__).read_text()
    assert "edgemri.cli" not in source.replace("``edgemri.cli``", "")
    assert sys.modules["edgemri.cli"].app is app


def test_demo_refuses_to_overwrite(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").exists()


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--arch", "simple-cnn", "--image-size", "32", "--per-class", "12",
                 "--epochs", "2", "--qat-epochs", "1", "--targets", "tflite-int8,onnx"])
    assert code == 0
    run = out / "run"
    assert (run / "model.keras").is_file() and (run / "qat" / "saved_model").is_dir()
    assert (run / "export" / "tflite-int8" / "model.tflite").is_file()
    report = json.loads((run / "bench" / "report.json").read_text())
    assert len(report["rows"]) >= 3  # FP32 reference + two artifacts
    assert (run / "bench" / "report.html").is_file()
