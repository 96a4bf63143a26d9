"""Decode any supported image file to one canonical 8-bit array.

Every image, whatever its format or mode, becomes ``uint8`` of shape (H, W) (grayscale) or
(H, W, 3) (colour) by these documented rules, so training, calibration, benchmarks, the runtime
and the Android demo all start from the same pixels:

* EXIF orientation is applied (phone photos of a screen or film).
* 1-bit, L, P, RGB, CMYK, YCbCr: converted with Pillow to L or RGB (palette images to RGB).
* RGBA / LA / palette with transparency: alpha-composited onto black (the MRI background).
* 16-bit and float images (I;16, I, F): min-max stretched to 0..255 per image (a constant image
  becomes 0), rounded half-to-even.
* DICOM (``.dcm``, needs ``edgemri[dicom]``): modality LUT (rescale slope/intercept), then VOI
  window from the header (first WindowCenter/WindowWidth) or, without one, the 0.5-99.5 percentile
  window; MONOCHROME1 is inverted; multi-frame takes the middle frame (``frame="middle"``) or
  raises (``frame="error"``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edgemri.errors import ImageDecodeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
SUPPORTED_SUFFIXES = IMAGE_SUFFIXES + DICOM_SUFFIXES

# Decompression-bomb guard stays on (Pillow's default); a 16k x 16k image is already absurd here.
Image.MAX_IMAGE_PIXELS = 16384 * 16384


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True for a name with a supported image suffix (the content is not looked at)."""
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


def is_hidden(name: str) -> bool:
    """Dot-names (``.ipynb_checkpoints``, ``.DS_Store``, ``._x.png``) are tool litter, never data."""
    return name.startswith(".")


def list_folder(folder: str | os.PathLike[str]) -> tuple[list[Path], list[Path]]:
    """(visible sub-folders, visible image files) directly inside ``folder``, each sorted."""
    dirs, images = [], []
    for entry in sorted(Path(folder).iterdir()):
        if is_hidden(entry.name):
            continue
        if entry.is_dir():
            dirs.append(entry)
        elif is_image_file(entry):
            images.append(entry)
    return dirs, images


def find_images(folder: str | os.PathLike[str], skip: Callable[[str], bool] | None = None) -> list[Path]:
    """Every image file under ``folder``, recursively, sorted: THE one image discovery.

    ``edgemri predict DIR``, the data audit, split, loader and training all find images here, so
    they agree on what a folder holds: hidden files and hidden folders (Kaggle sets ship
    ``.ipynb_checkpoints/`` copies) are skipped, as are names ``skip`` says no to (mask files).
    Symlinked folders are not followed. Standard library only.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not is_hidden(d)]
        found += [Path(dirpath) / name for name in filenames
                  if not is_hidden(name) and is_image_file(name) and not (skip and skip(name))]
    return sorted(found)


def load_image(path: str | os.PathLike[str], frame: str = "middle") -> np.ndarray:
    """Decode ``path`` to the canonical uint8 array, or raise ``ImageDecodeError`` naming it."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return load_dicom(path, frame=frame)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    return decode_image_bytes(data, source=str(path))


def decode_image_bytes(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes (jpg/png/bmp/tif) to the canonical uint8 array."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return pil_to_array(img)
    except ImageDecodeError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
            Image.DecompressionBombError, TypeError, IndexError, KeyError, ZeroDivisionError,
            MemoryError) as exc:
        raise ImageDecodeError(
            f"cannot decode image {source}: {type(exc).__name__}: {exc}",
            "Remove or replace the file (or pass --skip-bad to skip unreadable images)",
        ) from exc


def pil_to_array(img: Image.Image) -> np.ndarray:
    """Apply the canonical rules above to an already opened Pillow image."""
    img = ImageOps.exif_transpose(img) or img
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _stretch_to_u8(np.asarray(img, dtype=np.float64))
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA" if mode != "LA" else "LA")
        arr = np.asarray(img, dtype=np.float64)
        alpha = arr[..., -1:] / 255.0
        arr = np.rint(arr[..., :-1] * alpha).astype(np.uint8)
        return arr[..., 0] if arr.shape[-1] == 1 else arr
    if mode == "1":
        img = img.convert("L")
    elif mode not in ("L", "RGB"):
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ImageDecodeError(f"image has unsupported shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _stretch_to_u8(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 3:
        arr = arr[..., :3].mean(axis=-1)
    lo, hi = float(np.min(arr)), float(np.max(arr))
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.rint((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def load_dicom(path: Path, frame: str = "middle") -> np.ndarray:
    """DICOM to canonical uint8: modality LUT, VOI window, MONOCHROME1 inversion, frame choice."""
    from edgemri.extras import require

    pydicom = require("pydicom", "dicom", "reading DICOM files")
    try:
        ds = pydicom.dcmread(str(path))
        pixels = ds.pixel_array
    except Exception as exc:
        raise ImageDecodeError(
            f"cannot decode DICOM {path}: {type(exc).__name__}: {exc}",
            "Check the file is a DICOM image with pixel data (or pass --skip-bad)",
        ) from exc
    return dicom_to_u8(ds, np.asarray(pixels), source=str(path), frame=frame)


def dicom_to_u8(ds, pixels: np.ndarray, source: str, frame: str = "middle") -> np.ndarray:
    """The DICOM rules, separated from file reading so they can be tested on synthetic headers."""
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    colour = photometric in ("RGB", "YBR_FULL", "YBR_FULL_422") or int(getattr(ds, "SamplesPerPixel", 1)) == 3
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        if frame == "error":
            raise ImageDecodeError(
                f"{source} is a multi-frame DICOM ({frames} frames)",
                "Export the slice you want, or use frame='middle'",
            )
        pixels = pixels[frames // 2]
    if colour:
        if photometric.startswith("YBR"):
            from pydicom.pixels import convert_color_space

            pixels = convert_color_space(pixels, photometric, "RGB")
        return _stretch_to_u8_rgb(pixels)
    arr = pixels.astype(np.float64)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    arr = arr * slope + intercept
    center, width = _window(ds)
    if center is None:
        lo, hi = np.percentile(arr, [0.5, 99.5])
    else:
        lo, hi = center - width / 2.0, center + width / 2.0
    if hi <= lo:
        out = np.zeros(arr.shape, dtype=np.uint8)
    else:
        out = np.rint(np.clip((arr - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return out


def _window(ds) -> tuple[float | None, float]:
    center = getattr(ds, "WindowCenter", None)
    width = getattr(ds, "WindowWidth", None)
    if center is None or width is None:
        return None, 0.0
    if not isinstance(center, (int, float)):
        center = next(iter(center))  # multi-valued: the first window
    if not isinstance(width, (int, float)):
        width = next(iter(width))
    width = float(width)
    return (float(center), width) if width > 0 else (None, 0.0)


def _stretch_to_u8_rgb(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels)
    arr = pixels.astype(np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.rint((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)
