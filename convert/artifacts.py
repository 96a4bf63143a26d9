"""Writing an artifact: the model file with its manifest embedded, plus the sidecar ``<artifact>.json``.

Every write is atomic (``edgemri.atomic``): an interrupted conversion leaves the previous artifact
or none, never a truncated one. The embedded copy makes a lone file self-describing; the sidecar
is what the runtime prefers and where verification results are added afterwards.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from edgemri.atomic import atomic_path, write_bytes
from edgemri.runtime.manifest import Manifest, Quantization, sidecar_path, tool_versions


def artifact_manifest(base: Manifest, fmt: str, target: str, *, layout: str = "NHWC",
                      input_q: Quantization | None = None, output_q: Quantization | None = None,
                      int_dtype: str = "int8", extra: dict[str, Any] | None = None,
                      tools: tuple[str, ...] = ()) -> Manifest:
    """The run's manifest rewritten for one artifact: format, I/O dtype, quantization, layout."""
    inp = dataclasses.replace(base.input, layout=layout, dtype=int_dtype if input_q else "float32",
                              quantization=input_q)
    out = dataclasses.replace(base.output, dtype=int_dtype if output_q else "float32", quantization=output_q)
    provenance = {**base.provenance, "converted_from": "model.keras", "target": target,
                  "tools": tool_versions("tensorflow", "keras", *tools)}
    return base.replace(input=inp, output=out, format=fmt, provenance=provenance,
                        extra={**base.extra, **(extra or {})})


def write_tflite(path: Path, flatbuffer: bytes, manifest: Manifest) -> Path:
    """Flatbuffer + appended manifest zip (runtime.embed), then the sidecar."""
    from edgemri.runtime.embed import embed_tflite

    write_bytes(path, embed_tflite(flatbuffer, manifest))
    manifest.save(sidecar_path(path))
    return path


def write_onnx(path: Path, model: Any, manifest: Manifest) -> Path:
    """ONNX ModelProto with ``metadata_props["edgemri.manifest"]``, then the sidecar."""
    from edgemri.runtime.embed import embed_onnx_model

    onnx = __import__("onnx")
    embed_onnx_model(model, manifest)
    with atomic_path(path) as tmp:
        onnx.save(model, os.fspath(tmp))
    manifest.save(sidecar_path(path))
    return path


def write_openvino(xml_path: Path, model: Any, manifest: Manifest, compress_to_fp16: bool = False) -> Path:
    """OpenVINO IR pair with rt_info ``edgemri_manifest``; .bin first, then .xml, then the sidecar.

    ``save_model`` derives the .bin name from the .xml name, so both are written to temporary names
    in a scratch folder beside the destination and renamed into place (bin before xml: a reader
    that finds the xml always finds its weights).
    """
    import tempfile

    from edgemri.runtime.embed import embed_openvino_model

    ov = __import__("openvino")
    embed_openvino_model(model, manifest)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".ov.", dir=xml_path.parent) as scratch:
        tmp_xml = Path(scratch) / xml_path.name
        ov.save_model(model, os.fspath(tmp_xml), compress_to_fp16=compress_to_fp16)
        os.replace(tmp_xml.with_suffix(".bin"), xml_path.with_suffix(".bin"))
        os.replace(tmp_xml, xml_path)
    manifest.save(sidecar_path(xml_path))
    return xml_path



def update_sections(path: Path, **sections: Any) -> list[str]:
    """Put manifest sections (``runtime=``, ``calibration=``, ``ood=``) into an existing artifact.

    Both copies get them: the sidecar (what the runtime reads first) and, where the file embeds a
    manifest, the file itself through its format's writer, so a model copied without its sidecar
    keeps its hints, temperature and guard. Each copy keeps the rest of its own content; every write
    is atomic. Returns the paths written. The embedded copy is skipped, with a warning, when the
    format's package is missing (onnx or openvino on a Pi): the sidecar still has the sections.
    """
    import logging

    from edgemri.runtime.embed import read_embedded

    written = []
    sidecar = sidecar_path(path)
    # read the sidecar first: the format's writer below re-writes it from the embedded copy
    base = Manifest.load(sidecar) if sidecar.is_file() else None
    embedded = read_embedded(path)
    if embedded is not None:
        try:
            _reembed(path, embedded.replace(**sections))
            written.append(str(path))
        except ImportError as exc:
            logging.getLogger("edgemri").warning("%s: embedded manifest not updated (%s); the sidecar has it",
                                                 path, exc)
    base = base or embedded
    if base is not None:
        base.replace(**sections).save(sidecar)
        written.append(str(sidecar))
    return written


def _reembed(path: Path, manifest: Manifest) -> None:
    """Re-write the model file with ``manifest`` embedded (its writer also writes a sidecar, which
    the caller then re-writes with the sidecar's own content)."""
    from edgemri.runtime.formats import format_for_path

    fmt = format_for_path(path)
    if fmt.write is None:
        raise ImportError(f"the {fmt.name} format has no writer")
    fmt.write(path, _model_for_writer(fmt.name, path), manifest)


def _model_for_writer(fmt: str, path: Path) -> Any:
    """What ``Format.write`` takes for this format: the flatbuffer bytes, an ONNX proto, an OpenVINO model."""
    if fmt == "tflite":
        return path.read_bytes()
    if fmt == "onnx":
        import onnx

        return onnx.load(os.fspath(path))
    if fmt == "openvino":
        import openvino

        return openvino.Core().read_model(os.fspath(path))
    raise ImportError(f"no reader for the {fmt} format's writer")
