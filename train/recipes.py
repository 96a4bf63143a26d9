"""Training recipes: one TOML file each in ``train/recipes/``, shipped inside the package.

A recipe pins what decides a result (architecture and options, image size, colour handling,
augmentation, optimizer, schedule, batch size, epochs, early stopping, loss options), so a
published number names the file that reproduces it. Its ``[train]`` table uses TrainConfig's own
field names (a recipe is a fragment of ``config.json``), and its ``[recipe]`` table says what it
is for::

    [recipe]
    description = "..."          # the line `edgemri recipes` prints
    dataset = "brain-tumor-mri/train"
    needs_weights = false         # true: starts from ImageNet weights, so --weights PATH is required
    starts_from = "brain4-mobilenetv2"   # or: starts from the model of that recipe (--weights RUN)
    notes = ["what the original did that edgemri does differently"]

    [train]
    arch = "simple-cnn"
    image_size = 224
    [train.arch_options]
    dropout = 0.2

The table of recipes is derived from the folder (file name = recipe name), like the registries of
edgemri.registry, so ``edgemri recipes``, ``--recipe NAME`` and the docs cannot disagree.
Import cost: stdlib + edgemri.errors/registry (the CLI imports this only inside commands).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

from edgemri.errors import UsageError
from edgemri.registry import Registry
from edgemri.train.config import DEFAULT_ARCH, TrainConfig

#: TrainConfig fields a recipe may not pin: where the data and the run are, files on this machine,
#: and where training runs (devices, loader threads) rather than what it learns.
NOT_IN_RECIPE = frozenset({"data", "out", "overwrite", "recipe", "weights", "devices", "loader_workers",
                           "final_fit", "final_holdout"})
#: Nested tables that merge key by key with the command line's; each belongs to the field named.
TABLES = {"arch_options": "arch", "augment_overrides": "augment"}
#: ``final_fit_holdout``: the published model is ``edgemri train --final-fit RUN --holdout X`` of this
#: recipe's run (benchmarks/results/reproduce.sh reads it), not the selection run itself.
#: ``starts_from``: the recipe fine-tunes the model another recipe trains (its run directory or published
#: folder is the --weights; reproduce.sh passes the published one), e.g. BUSI from edgemri's brain MRI model.
META_KEYS = {"description": str, "dataset": str, "needs_weights": bool, "notes": list, "final_fit_holdout": float,
             "starts_from": str}
SUFFIX = ".toml"


@dataclass(frozen=True)
class Recipe:
    """One recipe file: what it is for (``[recipe]``) and the TrainConfig values it pins (``[train]``)."""

    name: str
    path: str
    description: str
    values: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    needs_weights: bool = False
    notes: tuple[str, ...] = ()
    final_fit_holdout: float | None = None
    starts_from: str | None = None
    packaged: bool = True
    text: str = field(default="", repr=False)  # the file as written (edgemri recipes NAME prints it)

    @property
    def ref(self) -> str:
        """What config.json records: the name of a packaged recipe, the path of a user's file."""
        return self.name if self.packaged else self.path

    def summary(self) -> str:
        """One line for ``edgemri recipes``: name, architecture, size, epochs, what it is."""
        v = self.values
        size = f"{v['image_size']}px" if "image_size" in v else "-"
        weights = "  [needs --weights]" if self.needs_weights else ""
        weights = f"  [starts from {self.starts_from}: --weights RUN]" if self.starts_from else weights
        fit = f"  [published: final fit, --holdout {self.final_fit_holdout:g}]" if self.final_fit_holdout else ""
        return (f"{self.name:<28} {v.get('arch', '-'):<15} {size:>6} {v.get('epochs', '-'):>4} ep  "
                f"{self.description}{weights}{fit}")


def _tomllib() -> ModuleType:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
        try:
            import tomli as tomllib
        except ModuleNotFoundError as exc:
            raise UsageError("reading a recipe needs Python 3.11+ (tomllib) or the tomli package",
                             "pip install tomli") from exc
    return tomllib



def recipe_dir() -> Any:
    """The packaged recipes folder (a Traversable: works from a wheel as from the source tree)."""
    return resources.files("edgemri.train").joinpath("recipes")


@functools.cache
def registry() -> Registry[Recipe]:
    """Every packaged recipe, by file name, in name order (read once per process)."""
    reg: Registry[Recipe] = Registry("recipe")
    folder = recipe_dir()
    for item in sorted(folder.iterdir(), key=lambda p: p.name.removesuffix(SUFFIX)):  # recipe-name order
        if item.name.endswith(SUFFIX):
            reg.add(parse(item.read_text(encoding="utf-8"), item.name[: -len(SUFFIX)], str(item), packaged=True))
    return reg


def load(ref: str) -> Recipe:
    """A packaged recipe by name, or a recipe file by path (``./my.toml``, anything ending in .toml)."""
    path = Path(ref).expanduser()
    if ref.endswith(SUFFIX) or path.name != ref:
        if not path.is_file():
            raise UsageError(f"recipe file {ref} not found", "Pass a recipe name (edgemri recipes) or a .toml path")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read the recipe: {exc}") from exc
        return parse(text, path.stem, str(path.resolve()), packaged=False)
    return registry().get(ref)


def parse(text: str, name: str, path: str, packaged: bool = False) -> Recipe:
    """Check a recipe's TOML; every problem is one line naming the file."""
    tomllib = _tomllib()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})", "See docs/train.md, Recipes") from exc
    unknown = sorted(set(data) - {"recipe", "train"})
    if unknown:
        raise UsageError(f"{path}: unknown table(s) {', '.join(unknown)}", "A recipe has [recipe] and [train]")
    meta, values = data.get("recipe", {}), data.get("train", {})
    if not isinstance(meta, dict) or not isinstance(values, dict):
        raise UsageError(f"{path}: [recipe] and [train] must be tables")
    _check_meta(meta, path)
    return Recipe(name=name, path=path, description=meta.get("description", ""), values=_check_train(values, path),
                  dataset=meta.get("dataset", ""), needs_weights=bool(meta.get("needs_weights", False)),
                  notes=tuple(meta.get("notes", ())), final_fit_holdout=meta.get("final_fit_holdout"),
                  starts_from=meta.get("starts_from"),
                  packaged=packaged, text=text)


def _check_meta(meta: dict[str, Any], path: str) -> None:
    for key, value in meta.items():
        if key not in META_KEYS:
            raise UsageError(f"{path}: unknown key recipe.{key}", f"[recipe] takes: {', '.join(META_KEYS)}")
        if not isinstance(value, META_KEYS[key]):
            raise UsageError(f"{path}: recipe.{key} must be a {META_KEYS[key].__name__}")
    if not 0.0 < meta.get("final_fit_holdout", 0.5) < 1.0:
        raise UsageError(f"{path}: recipe.final_fit_holdout must be in (0, 1), not {meta['final_fit_holdout']}")
    if not meta.get("description"):
        raise UsageError(f"{path}: [recipe] needs a description (the line edgemri recipes prints)")


def _check_train(values: dict[str, Any], path: str) -> dict[str, Any]:
    """Known TrainConfig fields with values of the field's type (ints are accepted for floats)."""
    hints = typing.get_type_hints(TrainConfig)
    out = {}
    for key, value in values.items():
        if key not in hints or key in NOT_IN_RECIPE:
            allowed = ", ".join(k for k in hints if k not in NOT_IN_RECIPE)
            hint = ("--weights is given on the command line (set recipe.needs_weights)" if key == "weights"
                    else f"[train] takes TrainConfig fields: {allowed}")
            raise UsageError(f"{path}: unknown key train.{key}", hint)
        out[key] = _typed(key, value, hints[key], path)
    if "augment_overrides" in out:
        _check_augment(out["augment_overrides"], path)
    try:  # a value of the right type but out of range (lr = 0, label_smoothing = 1.5) names the file too
        TrainConfig(**{"arch": DEFAULT_ARCH, "data": "", "out": "", **out}).validate()
    except UsageError as exc:
        raise UsageError(f"{path}: {exc.message}", exc.hint) from exc
    return out


def _typed(key: str, value: Any, hint: Any, path: str) -> Any:
    allowed = tuple(t for t in typing.get_args(hint) if t is not type(None)) if _is_union(hint) else (hint,)
    for kind in allowed:
        origin = typing.get_origin(kind) or kind
        if origin is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        if origin in (str, bool, dict) and isinstance(value, origin):
            return dict(value) if origin is dict else value
    names = " or ".join(getattr(k, "__name__", str(k)) for k in allowed)
    raise UsageError(f"{path}: train.{key} must be of type {names}, not {value!r}")


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _check_augment(overrides: dict[str, Any], path: str) -> None:
    from edgemri.train.augment import AugmentConfig

    known = {f.name for f in dataclasses.fields(AugmentConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UsageError(f"{path}: unknown key(s) train.augment_overrides.{', '.join(unknown)}",
                         f"Augmentation knobs: {', '.join(sorted(known))}")


def apply(recipe: Recipe, given: dict[str, Any], passed: set[str]) -> dict[str, Any]:
    """TrainConfig values: the recipe's, except for the fields the user set on the command line.

    ``given`` holds a value for every field (defaults included); ``passed`` names the fields whose
    flag was actually typed, so an option's default never clobbers what the recipe pins. The nested
    tables merge key by key (the command line's keys win) unless their owner was passed and differs
    (``--arch mobilenetv2`` on a ConvMixer recipe drops its ConvMixer options).
    """
    resolved = dict(given)
    for key, value in recipe.values.items():
        if key in TABLES:
            owner = TABLES[key]
            replaced = owner in passed and given.get(owner) != recipe.values.get(owner, given.get(owner))
            resolved[key] = dict(given.get(key) or {}) if replaced else {**value, **(given.get(key) or {})}
        elif key not in passed:
            resolved[key] = value
    resolved["recipe"] = recipe.ref
    if recipe.starts_from and not resolved.get("weights"):
        raise UsageError(f"recipe {recipe.name} starts from a {recipe.starts_from} model, so it needs --weights RUN",
                         f"Pass a run of --recipe {recipe.starts_from}, or the published "
                         f"benchmarks/results/models/{recipe.starts_from}")
    if recipe.needs_weights and not resolved.get("weights"):
        raise UsageError(f"recipe {recipe.name} starts from ImageNet weights, so it needs --weights PATH",
                         "Pass an include_top=False ImageNet .h5 you have on disk (nothing is downloaded)")
    return resolved


def config(ref: str, data: str, out: str, **overrides: Any) -> TrainConfig:
    """The Python API's ``--recipe``: TrainConfig of recipe ``ref`` with ``overrides`` (which win)."""
    recipe = load(ref)
    given = {**TrainConfig(arch=DEFAULT_ARCH, data=data, out=out).to_dict(), **overrides}
    return TrainConfig.from_dict(apply(recipe, given, set(overrides)))
