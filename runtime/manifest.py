"""The model manifest: the one contract between training, conversion, the runtime and Android.

Every model artifact travels with a manifest (a sidecar ``<artifact>.json`` and, where the format
allows, embedded in the file). It says everything needed to turn an image into the model's input
and the model's output into labelled probabilities, so nothing about a model is hard-coded
anywhere else. Schema changes bump ``SCHEMA_VERSION``; readers refuse versions they do not know.

Version 2 (backward compatible: version 1 files still load, their new sections are None) adds three
optional sections that a model earns after training: ``runtime`` (the fastest measured runtime
configuration whose outputs still match, from ``edgemri tune``/``bench``), ``calibration``
(temperature scaling fitted on the validation split, per artifact) and ``ood`` (what the model was
trained on, so the runtime can say when an image is not that).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgemri.errors import ManifestError

SCHEMA = "edgemri.manifest"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: no runtime / calibration / ood sections
COLORS = ("gray3", "rgb", "gray")  # gray3: luma replicated to 3 channels (MRI into ImageNet-shaped nets)
RESIZES = ("bilinear", "nearest")
LAYOUTS = ("NHWC", "NCHW")
DTYPES = ("float32", "int8", "uint8")
OUTPUT_KINDS = ("probabilities", "logits")


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of one tensor: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int

    def to_dict(self) -> dict[str, Any]:
        return {"scale": float(self.scale), "zero_point": int(self.zero_point)}


@dataclass(frozen=True)
class InputSpec:
    """How pixels become the model's input tensor.

    ``scale``/``offset`` map decoded 8-bit pixels p in [0, 255] to ``p * scale + offset``; the
    default maps to [-1, 1] (MobileNet convention). ``quantization`` is set for int8/uint8 inputs.
    """

    height: int
    width: int
    channels: int = 3
    color: str = "gray3"
    resize: str = "bilinear"
    scale: float = 1.0 / 127.5
    offset: float = -1.0
    layout: str = "NHWC"
    dtype: str = "float32"
    quantization: Quantization | None = None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """Shape of a batch of one, in this input's layout."""
        if self.layout == "NCHW":
            return (1, self.channels, self.height, self.width)
        return (1, self.height, self.width, self.channels)


@dataclass(frozen=True)
class OutputSpec:
    kind: str = "probabilities"
    dtype: str = "float32"
    quantization: Quantization | None = None


@dataclass(frozen=True)
class RuntimeHints:
    """How to run this artifact fastest on the kind of machine it was tuned on (issue 14).

    ``options`` are backend options (LiteRT ``xnnpack``; ONNX Runtime ``graph_optimization``;
    OpenVINO ``performance_hint`` / ``precision``); ``measured`` records where and how they won.
    """

    backend: str | None = None
    threads: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)
    # hints tuned on other CPU models, each {"backend", "threads", "options", "measured"}: one file
    # deployed to two kinds of machine runs each kind's winner (builtin kernels won on an AMD EPYC,
    # XNNPACK at 2 threads on an Intel Xeon, for the same model). Readers that know only the
    # top-level fields (the Android core, older edgemri) use those.
    machines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cpu(self) -> str | None:
        """The CPU model these hints were measured on (``measured.machine.cpu``), if recorded."""
        return self._machine_field("cpu")

    @property
    def isa(self) -> str | None:
        """The CPU's instruction-set tier (``measured.machine.isa``: avx2, avx512-vnni, amx, ...), if recorded.

        Older edgemri recorded the model name alone, which two different CPUs can share ("AMD EPYC").
        """
        return self._machine_field("isa")

    @property
    def machine_label(self) -> str | None:
        """``cpu (isa)`` for messages: where these hints were measured."""
        return f"{self.cpu} ({self.isa})" if self.cpu and self.isa else self.cpu

    def _machine_field(self, key: str) -> str | None:
        machine = self.measured.get("machine") if isinstance(self.measured, dict) else None
        value = machine.get(key) if isinstance(machine, dict) else None
        return value.strip() if isinstance(value, str) and value.strip() else None

    def tuned_on(self, cpu: str, isa: str | None = None) -> bool:
        """Measured on this kind of CPU: the same model name and, where both record it, the same ISA tier."""
        return self.cpu == cpu.strip() and (self.isa is None or isa is None or self.isa == isa)

    def entries(self) -> list[RuntimeHints]:
        """The top-level hints, then each well-formed per-machine entry (malformed ones skipped)."""
        out = [RuntimeHints(self.backend, self.threads, self.options, self.measured if isinstance(self.measured, dict)
                            else {})]
        for entry in self.machines if isinstance(self.machines, list) else ():
            if isinstance(entry, dict):
                try:
                    out.append(_section(RuntimeHints, {**entry, "machines": []}))
                except TypeError:
                    continue
        return out

    def for_cpu(self, cpu: str, isa: str | None = None) -> RuntimeHints:
        """The entry tuned on this CPU, else the top-level hints (tuned elsewhere, or nowhere recorded).

        An entry that records the same model name and ISA tier wins over one that records the name
        alone (older edgemri); an entry of the same name but another tier is another CPU.
        """
        entries = self.entries()
        exact = [e for e in entries if isa is not None and e.cpu == cpu.strip() and e.isa == isa]
        return next(iter(exact or [e for e in entries if e.tuned_on(cpu, isa)]), entries[0])

    def merged_with(self, new: RuntimeHints) -> RuntimeHints:
        """``new`` at the top level; hints of every other CPU kept under ``machines`` (one per CPU model and ISA tier)."""
        kept: dict[tuple[str, str | None], RuntimeHints] = {}
        for entry in self.entries():
            key = (entry.cpu or "", entry.isa)
            if entry.cpu and key != (new.cpu, new.isa) and key not in kept:
                kept[key] = entry
        machines = [{"backend": e.backend, "threads": e.threads, "options": e.options, "measured": e.measured}
                    for e in kept.values()]
        return RuntimeHints(new.backend, new.threads, dict(new.options), dict(new.measured), machines)


@dataclass(frozen=True)
class Calibration:
    """Temperature scaling of this artifact's outputs: probabilities become softmax(log p / T)."""

    temperature: float = 1.0
    fitted_on: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OODGuard:
    """What the model was trained on, and the score below which an image is 'not what I know'."""

    score: str = "msp"
    threshold: float = 0.0
    reference: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """Everything about a model that is not its weights."""

    task: str
    classes: tuple[str, ...]
    input: InputSpec
    output: OutputSpec = field(default_factory=OutputSpec)
    arch: str = ""
    format: str = "keras"
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    runtime: RuntimeHints | None = None
    calibration: Calibration | None = None
    ood: OODGuard | None = None

    def __post_init__(self) -> None:
        _check(len(self.classes) >= 2, "a manifest needs at least two classes")
        _check(len(set(self.classes)) == len(self.classes), "class names must be unique")
        spec = self.input
        _check(spec.color in COLORS, f"input.color must be one of {COLORS}, not {spec.color!r}")
        _check(spec.resize in RESIZES, f"input.resize must be one of {RESIZES}, not {spec.resize!r}")
        _check(spec.layout in LAYOUTS, f"input.layout must be one of {LAYOUTS}, not {spec.layout!r}")
        _check(spec.dtype in DTYPES, f"input.dtype must be one of {DTYPES}, not {spec.dtype!r}")
        _check(self.output.dtype in DTYPES, f"output.dtype must be one of {DTYPES}")
        _check(self.output.kind in OUTPUT_KINDS, f"output.kind must be one of {OUTPUT_KINDS}")
        _check(spec.channels == (1 if spec.color == "gray" else 3),
               f"input.color {spec.color!r} needs {1 if spec.color == 'gray' else 3} channel(s), "
               f"not {spec.channels}")
        _check(spec.height >= 8 and spec.width >= 8, "input size must be at least 8x8")
        for where, dtype, q in (("input", spec.dtype, spec.quantization),
                                ("output", self.output.dtype, self.output.quantization)):
            if dtype != "float32" and q is None:
                raise ManifestError(f"{where} is {dtype} but the manifest has no {where}.quantization")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["classes"] = list(self.classes)
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "manifest") -> Manifest:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ManifestError(f"{source} is not an edgemri manifest (no \"schema\": \"{SCHEMA}\")")
        version = data.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise ManifestError(
                f"{source} has manifest schema_version {version!r}; this edgemri reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}",
                "Upgrade edgemri or re-export the model with this version",
            )
        try:
            inp = dict(data["input"])
            out = dict(data.get("output") or {})
            inp["quantization"] = _quant(inp.get("quantization"))
            out["quantization"] = _quant(out.get("quantization"))
            return cls(
                task=str(data["task"]),
                classes=tuple(str(c) for c in data["classes"]),
                input=InputSpec(**inp),
                output=OutputSpec(**out),
                arch=str(data.get("arch", "")),
                format=str(data.get("format", "keras")),
                provenance=dict(data.get("provenance") or {}),
                extra=dict(data.get("extra") or {}),
                runtime=_section(RuntimeHints, data.get("runtime")),
                calibration=_section(Calibration, data.get("calibration")),
                ood=_section(OODGuard, data.get("ood")),
            )
        except ManifestError as exc:
            raise ManifestError(f"{source}: {exc.message}", exc.hint) from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{source} is malformed: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "manifest") -> Manifest:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{source} is not valid JSON: {exc}") from exc
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        path = Path(path)
        if not path.is_file():
            raise ManifestError(f"manifest {path} not found")
        return cls.from_json(path.read_bytes(), str(path))

    def save(self, path: str | os.PathLike[str]) -> Path:
        from edgemri.atomic import write_text

        return write_text(path, self.to_json())

    def replace(self, **changes: Any) -> Manifest:
        """A copy with some top-level fields changed (``input=``, ``output=``, ``format=`` ...)."""
        from dataclasses import replace

        return replace(self, **changes)

    # -- validation against a loaded model -----------------------------------------------------
    def check_model_io(self, input_shape: tuple[int, ...] | list[int], output_shape: tuple[int, ...] | list[int],
                       source: str) -> None:
        """Raise ``ManifestError`` when the model's I/O shapes disagree with this manifest.

        A batch dimension of -1/None/0/1 is accepted; spatial dims must match exactly.
        """
        want = self.input.shape[1:]
        got = tuple(int(d) if d not in (None, -1) else -1 for d in list(input_shape)[1:])
        if len(got) != 3 or any(g not in (w, -1) for g, w in zip(got, want)):
            raise ManifestError(
                f"{source}: model input shape {tuple(input_shape)} does not match the manifest "
                f"({self.input.layout} {want})",
                "Use the manifest exported with this model (edgemri convert writes <artifact>.json)",
            )
        n_out = int(list(output_shape)[-1])
        if n_out != self.num_classes:
            raise ManifestError(
                f"{source}: model has {n_out} outputs but the manifest lists {self.num_classes} classes "
                f"({', '.join(self.classes)})",
                "Use the manifest exported with this model (edgemri convert writes <artifact>.json)",
            )


def _quant(value: Any) -> Quantization | None:
    if value is None:
        return None
    return Quantization(scale=float(value["scale"]), zero_point=int(value["zero_point"]))


def _section(cls: Any, value: Any) -> Any:
    """An optional v2 section: None when absent; keys this version does not know are ignored."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"{cls.__name__} section must be an object, not {type(value).__name__}")
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in value.items() if k in known})


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ManifestError(message)


def sidecar_path(artifact: str | os.PathLike[str]) -> Path:
    """Where an artifact's sidecar manifest lives: ``<artifact>.json`` (``model.tflite.json``)."""
    return Path(f"{os.fspath(artifact)}.json")


def tool_versions(*modules: str) -> dict[str, str]:
    """Installed versions of the named distributions plus edgemri, for provenance."""
    from edgemri import __version__
    from edgemri.runtime.backends.base import package_versions

    return {"edgemri": __version__, **package_versions(tuple(modules))}
