"""Training recipes (train/recipes/*.toml): listing, loading, precedence over flags, config.json, errors."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from edgemri.cli import main
from edgemri.errors import UsageError
from edgemri.train import cli as train_cli
from edgemri.train import recipes
from edgemri.train.config import TrainConfig
from edgemri.train.models.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "train" / "recipes"
NAMES = sorted(p.stem for p in FOLDER.glob("*.toml"))
SEEDS = ("seed-brain4-cnn", "seed-brain4-mobilenet", "seed-brain2-mobilenetv2", "seed-busi3-densenet121",
         "seed-breastmri-convmixer")


@pytest.fixture
def captured(monkeypatch) -> list[TrainConfig]:
    """``edgemri train`` up to the trainer: the resolved TrainConfig instead of a training run."""
    seen: list[TrainConfig] = []
    monkeypatch.setattr(train_cli, "_run", lambda cfg, resume=False: seen.append(cfg))
    return seen


def _train(tmp_path: Path, *args: str) -> list[str]:
    return ["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), *args]


def _write(tmp_path: Path, text: str, name: str = "my.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- the packaged recipes ------------------------------------------------------------------------
def test_the_table_is_the_folder_and_holds_the_seeds_and_edgemris_own():
    assert recipes.registry().names() == NAMES
    assert set(SEEDS) <= set(NAMES) and "demo" in NAMES
    own = {f"{d}-{a}" for d in ("brain4", "brain2", "busi3") for a in ("convmixer-edge", "mobilenetv2")}
    assert own <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_recipe_resolves_to_a_valid_config(name):
    recipe = recipes.load(name)
    assert recipe.description and recipe.packaged and recipe.ref == name
    weights = {"weights": "w.h5"} if recipe.needs_weights or recipe.starts_from else {}
    cfg = recipes.config(name, data="d", out="o", **weights)
    cfg.validate()
    MODELS.get(cfg.arch).resolve_options(cfg.arch_options)
    assert cfg.recipe == name and cfg.image_size >= MODELS.get(cfg.arch).min_size
    for key, value in recipe.values.items():  # every pinned value reaches the config unchanged
        assert getattr(cfg, key) == value, key


def test_seed_recipes_pin_what_the_notebooks_published():
    cnn = recipes.load("seed-brain4-cnn").values
    assert (cnn["arch"], cnn["image_size"], cnn["optimizer"], cnn["lr"], cnn["weight_decay"], cnn["batch_size"],
            cnn["epochs"]) == ("simple-cnn", 224, "adamw", 1e-4, 1e-4, 128, 10)
    assert cnn["augment_overrides"]["hflip"] and cnn["augment_overrides"]["rotation"] == 15
    brain2 = recipes.load("seed-brain2-mobilenetv2")
    assert brain2.needs_weights and brain2.values["merge"] == ["tumor=glioma,meningioma,pituitary"]
    assert (brain2.values["optimizer"], brain2.values["lr"], brain2.values["batch_size"], brain2.values["patience"],
            brain2.values["fine_tune_layers"], brain2.values["arch_options"]["dropout"]) == ("adam", 1e-4, 32, 10, 20, 0.5)
    assert recipes.load("seed-busi3-densenet121").values["epochs"] == 100
    convmixer = recipes.load("seed-breastmri-convmixer").values
    assert (convmixer["batch_size"], convmixer["epochs"], convmixer["patience"]) == (64, 30, 5)
    for name in ("brain4-convmixer-edge", "brain2-convmixer-edge", "busi3-convmixer-edge"):
        values = recipes.load(name).values
        assert {k: values["arch_options"][k] for k in ("dim", "depth", "patch", "kernel")} == \
            {"dim": 128, "depth": 6, "patch": 8, "kernel": 5}
        assert values["image_size"] == (160 if name.startswith("brain4") else 128)
        assert values["group_duplicates"] is True


def test_recipes_command_prints_one_line_per_recipe(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]  # under the header
    assert [line.split()[0] for line in lines] == NAMES
    by_name = {line.split()[0]: line for line in lines}
    assert "needs --weights" in by_name["seed-brain2-mobilenetv2"] and "needs" not in by_name["demo"]
    published_as_final_fit = {n for n in NAMES if recipes.load(n).final_fit_holdout}
    assert published_as_final_fit and all("final fit, --holdout" in by_name[n] for n in published_as_final_fit)
    assert main(["recipes", "seed-brain4-cnn"]) == 0
    assert (FOLDER / "seed-brain4-cnn.toml").read_text() in capsys.readouterr().out


def test_recipes_ship_as_package_data():
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "recipes/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["edgemri.train"]
    assert sorted(p.stem for p in recipes.recipe_dir().iterdir() if p.name.endswith(".toml")) == NAMES


def test_docs_name_every_recipe():
    text = (ROOT / "docs" / "train.md").read_text()
    assert [n for n in NAMES if f"`{n}`" not in text] == []


# -- precedence: recipe < flags the user typed ---------------------------------------------------
def test_typed_flags_override_the_recipe_and_defaults_never_do(tmp_path, captured):
    assert main(_train(tmp_path, "--recipe", "seed-brain4-cnn", "--lr", "0.01", "--batch-size", "32",
                       "--arch-opt", "dropout=0.5", "--rotation", "0", "--no-class-weights")) == 0
    cfg = captured[-1]
    assert cfg.lr == 0.01 and cfg.batch_size == 32  # typed, even where the value is the option's default
    assert cfg.image_size == 224 and cfg.epochs == 10 and cfg.optimizer == "adamw"  # untyped: the recipe's
    assert cfg.schedule == "constant" and cfg.precise_bn == 0 and cfg.patience == 0
    assert cfg.arch == "simple-cnn" and cfg.arch_options == {"filters": "16,32,64", "dropout": "0.5"}
    assert cfg.augment_overrides == {"hflip": True, "rotation": 0.0, "zoom": 0.2, "brightness": 0.2,
                                     "contrast": 0.2, "brightness_mode": "scale"}
    assert cfg.class_weights is False and cfg.recipe == "seed-brain4-cnn"


def test_another_arch_drops_the_recipes_arch_options(tmp_path, captured):
    assert main(_train(tmp_path, "--recipe", "brain4-convmixer-edge", "--arch", "mobilenetv2",
                       "--arch-opt", "alpha=0.35")) == 0
    cfg = captured[-1]
    assert cfg.arch == "mobilenetv2" and cfg.arch_options == {"alpha": "0.35"} and cfg.image_size == 160
    assert main(_train(tmp_path, "--recipe", "brain4-convmixer-edge", "--augment", "none")) == 0
    assert captured[-1].augment == "none" and captured[-1].augment_overrides == {}


def test_without_a_recipe_nothing_changes(tmp_path, captured):
    assert main(_train(tmp_path, "--arch", "simple-cnn")) == 0
    cfg = captured[-1]
    blank = TrainConfig(arch="simple-cnn", data=cfg.data, out=cfg.out)
    assert cfg == blank and cfg.recipe is None


def test_python_api_overrides_win():
    cfg = recipes.config("brain2-convmixer-edge", data="d", out="o", epochs=3, arch_options={"depth": 2})
    assert cfg.epochs == 3 and cfg.arch_options["depth"] == 2 and cfg.arch_options["dim"] == 128
    assert cfg.merge == ["tumor=glioma,meningioma,pituitary"] and cfg.task == "brain2"


def test_a_recipe_that_needs_imagenet_weights_asks_for_them(tmp_path, captured, capsys):
    assert main(_train(tmp_path, "--recipe", "seed-brain2-mobilenetv2")) == 2
    err = capsys.readouterr().err
    assert "needs --weights PATH" in err and len(err.strip().splitlines()) == 1
    assert main(_train(tmp_path, "--recipe", "seed-brain2-mobilenetv2", "--weights", "w.h5")) == 0
    assert captured[-1].weights == "w.h5" and captured[-1].freeze_epochs == 10


def test_a_recipe_file_by_path(tmp_path, captured, monkeypatch):
    path = _write(tmp_path, '[recipe]\ndescription = "mine"\n[train]\narch = "simple-cnn"\nimage_size = 16\n'
                            'lr = 1\n[train.arch_options]\nfilters = "4"\n')
    monkeypatch.chdir(tmp_path)
    assert main(_train(tmp_path, "--recipe", "./my.toml")) == 0
    cfg = captured[-1]
    assert cfg.recipe == str(path.resolve()) and cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.image_size == 16 and cfg.arch_options == {"filters": "4"}


# -- config.json of a real (tiny) run --------------------------------------------------------------
def test_config_json_records_the_recipe_and_every_resolved_value(tmp_path):
    pytest.importorskip("keras")
    from edgemri.data.synth import synthesize

    synthesize(tmp_path / "data", task="binary", per_class=4, size=16)
    path = _write(tmp_path, '[recipe]\ndescription = "tiny"\n[train]\narch = "simple-cnn"\nimage_size = 16\n'
                            'epochs = 1\nbatch_size = 4\nprecise_bn = 0\naugment = "none"\nval_fraction = 0.25\n'
                            '[train.arch_options]\nfilters = "4"\n')
    assert main(_train(tmp_path, "--recipe", str(path), "--seed", "3", "--no-tensorboard")) == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["recipe"] == str(path.resolve())
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= set(saved)
    assert (saved["image_size"], saved["epochs"], saved["batch_size"], saved["seed"], saved["val_fraction"]) == \
        (16, 1, 4, 3, 0.25)
    assert saved["arch_options"] == {"filters": "4", "dropout": 0.2, "init": "glorot"}  # resolved: defaults filled in


# -- bad recipes: one line naming the file ---------------------------------------------------------
BAD = [
    ('[recipe]\ndescription = "x"\n[train]\narch = "simple-cnn"\nepochs = \n', "not valid TOML"),
    ('[recipe]\ndescription = "x"\n[train]\nepoch = 3\n', "unknown key train.epoch"),
    ('[recipe]\ndescription = "x"\n[train]\ndata = "/data"\n', "unknown key train.data"),
    ('[recipe]\ndescription = "x"\n[train]\nweights = "w.h5"\n', "unknown key train.weights"),
    ('[recipe]\ndescription = "x"\nauthor = "me"\n', "unknown key recipe.author"),
    ('[recipe]\ndescription = "x"\n[training]\nepochs = 3\n', "unknown table(s) training"),
    ('[train]\nepochs = 3\n', "needs a description"),
    ('[recipe]\ndescription = "x"\n[train]\nepochs = "3"\n', "train.epochs must be of type int"),
    ('[recipe]\ndescription = "x"\n[train]\nclass_weights = 1\n', "train.class_weights must be of type bool"),
    ('[recipe]\ndescription = "x"\n[train.augment_overrides]\nspin = 3\n', "train.augment_overrides.spin"),
    ('[recipe]\ndescription = "x"\n[train.augment_overrides]\nbrightness_mode = "multiply"\n',
     "unknown brightness mode 'multiply'"),
    ('[recipe]\ndescription = "x"\n[train]\naugment = "ct"\n', "unknown augmentation preset 'ct'"),
    ('[recipe]\ndescription = "x"\n[train]\nlabel_smoothing = 1.5\n', "--label-smoothing must be in [0, 1)"),
    ('[recipe]\ndescription = "x"\n[train]\nfinal_fit = "runs/a"\n', "unknown key train.final_fit"),
    ('[recipe]\ndescription = "x"\nfinal_fit_holdout = 1.0\n', "final_fit_holdout must be in (0, 1)"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m for _, m in BAD])
def test_a_bad_recipe_file_is_one_line_naming_it(tmp_path, captured, capsys, text, message):
    path = _write(tmp_path, text)
    assert main(_train(tmp_path, "--recipe", str(path))) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and str(path.resolve()) in err and len(err.splitlines()) == 1
    assert captured == []


def test_brightness_mode_flag_reaches_the_config_and_a_bad_one_is_one_line(tmp_path, captured, capsys):
    assert main(_train(tmp_path, "--recipe", "demo", "--brightness-mode", "scale")) == 0
    assert captured[-1].augment_overrides["brightness_mode"] == "scale"
    assert main(_train(tmp_path, "--brightness-mode", "multiply")) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown brightness mode 'multiply'" in err and "add, scale" in err and len(err.splitlines()) == 1
    assert len(captured) == 1


def test_crop_scale_flag_reaches_the_config_and_a_bad_one_is_one_line(tmp_path, captured, capsys):
    assert main(_train(tmp_path, "--recipe", "demo", "--crop-scale", "0.08")) == 0
    assert captured[-1].augment_overrides["crop_scale"] == 0.08
    assert main(_train(tmp_path, "--crop-scale", "1")) == 2
    err = capsys.readouterr().err.strip()
    assert "crop scale 1.0 is outside [0, 1)" in err and len(err.splitlines()) == 1
    assert len(captured) == 1


def test_unknown_names_missing_files_and_resume(tmp_path, captured, capsys):
    assert main(_train(tmp_path, "--recipe", "seed-brain4-cn")) == 2
    assert 'unknown recipe \'seed-brain4-cn\'. Did you mean "seed-brain4-cnn"?' in capsys.readouterr().err
    assert main(_train(tmp_path, "--recipe", "nope/missing.toml")) == 2
    assert "recipe file nope/missing.toml not found" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path), "--recipe", "demo"]) == 2
    assert "--recipe and --resume do not go together" in capsys.readouterr().err
    with pytest.raises(UsageError, match="unknown recipe"):
        recipes.load("no-such-recipe")
    assert captured == []


def test_reading_recipes_imports_no_framework():
    code = ("import sys; from edgemri.train import recipes; recipes.registry(); recipes.config('demo', 'd', 'o');"
            "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cv_fold_flag_parses_and_bad_values_fail_before_data():
    from edgemri.train.config import TrainConfig, parse_cv_fold

    assert parse_cv_fold("2/5") == {"cv_fold": 2, "cv_folds": 5} and parse_cv_fold(None) == {}
    for bad in ("2", "a/5", "2/"):
        with pytest.raises(UsageError, match="is not I/K"):
            parse_cv_fold(bad)
    with pytest.raises(UsageError, match="fold 5 of 5"):
        TrainConfig(arch="simple-cnn", data="d", out="o", **parse_cv_fold("5/5")).validate()


def test_a_recipe_that_starts_from_another_names_it_and_needs_its_run():
    """busi3-mobilenetv2-brain4 = busi3-mobilenetv2's training, started from the brain4-mobilenetv2 model."""
    chained = [n for n in NAMES if recipes.load(n).starts_from]
    assert chained and all(recipes.load(n).starts_from in NAMES for n in chained)
    mine, base = recipes.load("busi3-mobilenetv2-brain4"), recipes.load("busi3-mobilenetv2")
    assert mine.starts_from == "brain4-mobilenetv2" and mine.values == base.values
    with pytest.raises(UsageError, match="starts from a brain4-mobilenetv2 model, so it needs --weights RUN"):
        recipes.config("busi3-mobilenetv2-brain4", data="d", out="o")
    assert recipes.config("busi3-mobilenetv2-brain4", data="d", out="o", weights="runs/b4").weights == "runs/b4"
