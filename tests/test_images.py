"""runtime.images: every mode to the documented canonical uint8, DICOM rules, and decode errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from edgemri.errors import ImageDecodeError
from edgemri.runtime.images import decode_image_bytes, load_image

pytestmark = pytest.mark.runtime  # numpy + pillow (+ pydicom for the DICOM tests, skipped without it)


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def _encoded(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


RNG = np.random.default_rng(0)
GRAY = RNG.integers(0, 256, (7, 5), dtype=np.uint8)
RGB = RNG.integers(0, 256, (7, 5, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", ["png", "bmp", "tif", "tiff"])
def test_lossless_formats_keep_gray_and_rgb_pixels(tmp_path, suffix):
    g = load_image(_save(Image.fromarray(GRAY), tmp_path / f"g.{suffix}"))
    c = load_image(_save(Image.fromarray(RGB), tmp_path / f"c.{suffix}"))
    assert g.dtype == c.dtype == np.uint8
    np.testing.assert_array_equal(g, GRAY)
    np.testing.assert_array_equal(c, RGB)


def test_jpeg_gray_and_rgb_shapes(tmp_path):
    assert load_image(_save(Image.fromarray(GRAY), tmp_path / "g.jpg")).shape == (7, 5)
    assert load_image(_save(Image.fromarray(RGB), tmp_path / "c.jpeg")).shape == (7, 5, 3)


def test_rgba_is_composited_on_black(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[...] = (200, 100, 50, 128)
    rgba[0, 0, 3] = 255
    out = load_image(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    assert out.shape == (2, 2, 3)
    assert out[0, 0].tolist() == [200, 100, 50]
    expected = np.rint(np.array([200, 100, 50]) * 128 / 255).astype(int).tolist()
    assert out[1, 1].tolist() == expected


def test_palette_becomes_rgb_and_1bit_becomes_gray(tmp_path):
    pal = Image.new("P", (3, 2))
    pal.putpalette([10, 20, 30, 200, 150, 100] + [0] * 762)
    pal.putpixel((1, 0), 1)
    out = load_image(_save(pal, tmp_path / "p.png"))
    assert out.shape == (2, 3, 3)
    assert out[0, 0].tolist() == [10, 20, 30] and out[0, 1].tolist() == [200, 150, 100]
    bw = Image.new("1", (2, 2))
    bw.putpixel((0, 0), 1)
    np.testing.assert_array_equal(load_image(_save(bw, tmp_path / "b.png")), [[255, 0], [0, 0]])


def test_16bit_is_min_max_stretched(tmp_path):
    arr = np.array([[1000, 2000], [3000, 1000]], dtype=np.uint16)
    out = load_image(_save(Image.fromarray(arr), tmp_path / "d.png"))
    # (2000-1000)*255/2000 = 127.5 -> 128 (half to even)
    np.testing.assert_array_equal(out, [[0, 128], [255, 0]])
    flat = load_image(_save(Image.fromarray(np.full((2, 2), 7, np.uint16)), tmp_path / "f.png"))
    np.testing.assert_array_equal(flat, np.zeros((2, 2)))


def test_exif_orientation_is_applied(tmp_path):
    arr = np.arange(6, dtype=np.uint8).reshape(2, 3) * 40
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to display
    path = tmp_path / "o.png"
    img.save(path, exif=exif.tobytes())
    out = load_image(path)
    np.testing.assert_array_equal(out, np.rot90(arr, k=-1))


@pytest.mark.parametrize("data", [b"", b"not an image", _encoded(RGB)[:40], _encoded(RGB, "JPEG")[:100]])
def test_corrupt_or_truncated_files_name_the_file(tmp_path, data):
    path = tmp_path / "broken.png"
    path.write_bytes(data)
    with pytest.raises(ImageDecodeError) as err:
        load_image(path)
    assert str(path) in err.value.one_line()


def test_missing_file(tmp_path):
    with pytest.raises(ImageDecodeError, match="cannot read"):
        load_image(tmp_path / "gone.png")


# ---------------------------------------------------------------- DICOM, on files pydicom ships

@pytest.fixture(scope="module")
def pydicom():
    """pydicom (the ``dicom`` extra) with its test files; only the DICOM tests skip without it."""
    pytest.importorskip("pydicom.data", reason='DICOM input needs pydicom (pip install "edgemri[dicom]")')
    import pydicom

    return pydicom


def _window(ds, arr):
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    lo, hi = center - width / 2, center + width / 2
    return np.rint(np.clip((arr - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def test_dicom_header_window_and_rescale(pydicom):
    path = pydicom.data.get_testdata_file("MR_small.dcm")
    ds = pydicom.dcmread(path)
    raw = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == raw.shape
    np.testing.assert_array_equal(out, _window(ds, raw))


def test_dicom_without_window_uses_percentiles_after_rescale(pydicom):
    path = pydicom.data.get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    assert "WindowCenter" not in ds
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    lo, hi = np.percentile(hu, [0.5, 99.5])
    out = load_image(path)
    np.testing.assert_array_equal(out, np.rint(np.clip((hu - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8))


def test_dicom_monochrome1_is_inverted(tmp_path, pydicom):
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    normal = load_image(pydicom.data.get_testdata_file("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    np.testing.assert_array_equal(load_image(path), 255 - normal)


def test_dicom_multiframe_middle_or_error(pydicom):
    path = pydicom.data.get_testdata_file("rtdose.dcm")
    ds = pydicom.dcmread(path)
    frames = int(ds.NumberOfFrames)
    assert frames > 1
    out = load_image(path)
    assert out.shape == ds.pixel_array.shape[1:]
    middle = ds.pixel_array[frames // 2].astype(np.float64) * float(ds.get("RescaleSlope", 1) or 1)
    lo, hi = np.percentile(middle, [0.5, 99.5])
    np.testing.assert_array_equal(out, np.rint(np.clip((middle - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8))
    with pytest.raises(ImageDecodeError, match="multi-frame"):
        load_image(path, frame="error")


def test_dicom_truncated_names_the_file(pydicom):
    path = pydicom.data.get_testdata_file("MR_truncated.dcm")
    with pytest.raises(ImageDecodeError) as err:
        load_image(path)
    assert "MR_truncated.dcm" in err.value.one_line()


# ---------------------------------------------------------------- property: load or ImageDecodeError

def _check_decode(data: bytes) -> None:
    try:
        arr = decode_image_bytes(data)
    except ImageDecodeError:
        return
    assert arr.dtype == np.uint8 and arr.ndim in (2, 3) and arr.size > 0
    assert arr.ndim == 2 or arr.shape[-1] == 3


SEEDS = [_encoded(GRAY), _encoded(RGB), _encoded(RGB, "JPEG"), _encoded(GRAY, "BMP"), _encoded(RGB, "TIFF")]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_random_bytes_load_or_raise_image_decode_error(data):
    _check_decode(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
       st.integers(0, 10_000))
def test_mutated_valid_images_load_or_raise_image_decode_error(seed, flips, cut):
    data = bytearray(seed)
    for pos, value in flips:
        data[pos % len(data)] = value
    _check_decode(bytes(data[: max(1, len(data) - cut % len(data))]))
