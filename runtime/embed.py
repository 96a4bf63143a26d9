"""Carry the manifest inside the model file, so a lone artifact still says how to use it.

* ``.tflite``: a zip archive holding ``manifest.json`` is appended after the flatbuffer. This is
  TFLite's "associated files" convention (the Metadata Writer/Populator does the same for label
  files): the interpreter reads only the flatbuffer and ignores trailing bytes, and ``zipfile``
  finds the archive from the end of the file. Existing associated files are kept.
* ``.onnx``: ``ModelProto.metadata_props`` entry ``"edgemri.manifest"`` (JSON string). Read here
  with a tiny protobuf reader that skips the graph, so neither ``onnx`` nor a session is needed.
* ``.xml`` (OpenVINO IR): ``rt_info`` entry ``"edgemri_manifest"`` (JSON string), written with
  ``model.set_rt_info(json, "edgemri_manifest")``; read here with the standard XML parser.

Each reader is named by its format's entry in ``edgemri.runtime.formats`` (``read_manifest``), which
``read_embedded`` dispatches on. Only the standard library is imported at module level: the
runtime imports this on a Pi.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

from edgemri.errors import ModelFileError
from edgemri.runtime.formats import format_for_path
from edgemri.runtime.manifest import Manifest

TFLITE_MEMBER = "manifest.json"
ONNX_KEY = "edgemri.manifest"
OPENVINO_KEY = "edgemri_manifest"


# -- TFLite ------------------------------------------------------------------------------------
def embed_tflite(model_bytes: bytes, manifest: Manifest) -> bytes:
    """Return ``model_bytes`` with a zip holding ``manifest.json`` appended (replacing an old one)."""
    return embed_files(model_bytes, {TFLITE_MEMBER: manifest.to_json().encode("utf-8")}, what="a manifest")


def embed_files(model_bytes: bytes, files: dict[str, bytes], what: str = "associated files") -> bytes:
    """``model_bytes`` with ``files`` in its appended zip (other members kept, same names replaced).

    The TFLite Metadata convention: the metadata names associated files (``labels.txt``) that
    MediaPipe and the TFLite Support library read from this zip; LiteRT ignores the trailing bytes.
    """
    flatbuffer, members = _split_tflite(model_bytes)
    if len(flatbuffer) < 8 or flatbuffer[4:8] != b"TFL3":
        raise ModelFileError(f"cannot embed {what}: the bytes are not a TFLite flatbuffer (no TFL3 identifier)")
    members.update(files)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            # a fixed timestamp: the same model and manifest give the same bytes (reproducible artifacts)
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return bytes(flatbuffer) + buf.getvalue()


def _split_tflite(data: bytes) -> tuple[bytes, dict[str, bytes]]:
    """(flatbuffer bytes, associated files) of a .tflite that may already carry a zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if not infos:
                return data, {}
            start = min(info.header_offset for info in infos)
            return data[:start], {info.filename: zf.read(info) for info in infos}
    except (zipfile.BadZipFile, OSError, ValueError):
        return data, {}


def split_tflite(data: bytes) -> tuple[bytes, dict[str, bytes]]:
    """(flatbuffer bytes, associated files by name) of a .tflite's contents."""
    return _split_tflite(data)


def tflite_manifest_text(path: Path) -> str | None:
    """The ``manifest.json`` member of the zip appended to a .tflite, or None."""
    try:
        with zipfile.ZipFile(path) as zf:
            if TFLITE_MEMBER not in zf.namelist():
                return None
            return zf.read(TFLITE_MEMBER).decode("utf-8")
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        return None


# -- ONNX --------------------------------------------------------------------------------------
def embed_onnx_model(model: Any, manifest: Manifest) -> Any:
    """Set ``metadata_props["edgemri.manifest"]`` on an ``onnx.ModelProto`` (in place; returned)."""
    for prop in list(model.metadata_props):
        if prop.key == ONNX_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_KEY, manifest.to_json()
    return model


def _read_varint(f: io.BufferedReader) -> int | None:
    shift = result = 0
    while True:
        b = f.read(1)
        if not b:
            return None
        result |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _onnx_metadata(path: Path) -> dict[str, str]:
    """``metadata_props`` (ModelProto field 14) of an .onnx file, skipping every other field."""
    props: dict[str, str] = {}
    size = path.stat().st_size
    with path.open("rb") as f:
        while True:
            key = _read_varint(f)
            if key is None:
                return props
            field_no, wire = key >> 3, key & 7
            if wire == 0:
                if _read_varint(f) is None:
                    raise ValueError("truncated varint")
            elif wire == 1:
                f.seek(8, os.SEEK_CUR)
            elif wire == 5:
                f.seek(4, os.SEEK_CUR)
            elif wire == 2:
                length = _read_varint(f)
                if length is None or f.tell() + length > size:
                    raise ValueError("truncated field")
                if field_no == 14:
                    k, v = _string_pair(f.read(length))
                    props[k] = v
                else:
                    f.seek(length, os.SEEK_CUR)
            else:
                raise ValueError(f"unexpected wire type {wire}")


def _string_pair(blob: bytes) -> tuple[str, str]:
    """Decode a StringStringEntryProto (key = 1, value = 2)."""
    f = io.BytesIO(blob)
    out = {1: "", 2: ""}
    while True:
        key = _read_varint(f)  # type: ignore[arg-type]
        if key is None:
            return out[1], out[2]
        length = _read_varint(f)  # type: ignore[arg-type]
        if key & 7 != 2 or length is None:
            raise ValueError("bad metadata entry")
        out[key >> 3] = f.read(length).decode("utf-8")


def onnx_manifest_text(path: Path) -> str | None:
    """``metadata_props["edgemri.manifest"]`` of an .onnx file, or None."""
    try:
        return _onnx_metadata(path).get(ONNX_KEY)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"cannot read ONNX model {path}: {exc}",
                             "The file looks truncated or corrupt; export it again") from exc


# -- OpenVINO ----------------------------------------------------------------------------------
def embed_openvino_model(model: Any, manifest: Manifest) -> Any:
    """Set the ``edgemri_manifest`` rt_info entry on an ``openvino.Model`` (in place; returned)."""
    model.set_rt_info(manifest.to_json(), OPENVINO_KEY)
    return model


def openvino_manifest_text(path: Path) -> str | None:
    """The ``edgemri_manifest`` rt_info value of an OpenVINO .xml, or None."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ModelFileError(f"cannot read OpenVINO IR {path}: {exc}",
                             "The file looks truncated or corrupt; export it again") from exc
    node = root.find(f"rt_info/{OPENVINO_KEY}")
    return None if node is None else node.get("value")


# -- reading -----------------------------------------------------------------------------------
def read_embedded(path: str | os.PathLike[str]) -> Manifest | None:
    """The manifest embedded in a model file, or None when it carries none.

    The reader is the file format's (``edgemri.runtime.formats``). Raises ``ManifestError`` when an
    embedded manifest exists but is invalid, and ``ModelFileError`` for a missing file or a
    suffix no format with an embedded manifest owns.
    """
    path = Path(path)
    reader = format_for_path(path, having="read_manifest").read_manifest
    if not path.is_file():
        raise ModelFileError(f"model file {path} not found")
    text = reader(path)  # type: ignore[misc]  # having="read_manifest" guarantees a reader
    if text is None:
        return None
    return Manifest.from_json(text, source=f"manifest embedded in {path}")
