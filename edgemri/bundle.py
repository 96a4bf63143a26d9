"""`edgemri bundle`: a device folder (model, manifest, labels, parity fixtures) for Android and the Pi.

A bundle is what goes onto a device: the converted ``model.tflite``, the manifest the Python
runtime actually used with it (the sidecar reconciled with the model's own quantization, so the
phone quantizes with exactly the same numbers), ``labels.txt``, a README, and ``fixtures/``: PNG
images, the exact input tensors the Python runtime feeds the model (raw little-endian bytes), its
raw outputs and probabilities. The Android core's JVM tests replay those fixtures to prove the
Java preprocessing matches Python bit for bit (see android-demo/README.md).

Layout (``--out DIR``)::

    DIR/model.tflite  manifest.json  labels.txt  README.md  bundle.json
    DIR/fixtures/fixtures.json  <name>.png  <name>.input.bin  <name>.output.bin
    DIR.zip   (unless --no-zip)

Fixture images are the canonical decoded pixels written as PNG (lossless, so every decoder
reads the same numbers): ``--fixtures N`` images from the run's val split (or ``--images``),
plus derived variants that exercise every preprocessing branch: a non-square crop, an image
smaller than the input (upscaling), a colour image and one with transparency.

``--web`` adds a static page that classifies a dropped or picked image in the browser with the
same model (docs/web.md): ``index.html``, ``app.js``, ``preprocess.js`` (edgemri's preprocessing
ported to JavaScript, so the model sees the pixels ``edgemri predict`` feeds it), ``style.css``
(templates in ``edgemri/web/``) and ``vendor/tasks-vision/``: MediaPipe Tasks Vision's JS bundle
and WASM files, vendored at build time from the npm package (fetched once with ``npm pack`` into
``~/.cache/edgemri/web``, or ``--tasks-vision DIR``), so the page fetches nothing from elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

FIXTURES_SCHEMA = "edgemri.fixtures"
FIXTURES_VERSION = 1
MARKER = "bundle.json"

# --web: the page's own files (package data, edgemri/web/) and what it vendors from npm. The version
# is pinned because the page is tested against it (tests/test_web_bundle.py, in CI's Chromium).
WEB_FILES = ("index.html", "app.js", "preprocess.js", "style.css")
TASKS_VISION = "@mediapipe/tasks-vision"
TASKS_VISION_VERSION = "1.1.0"
# The IIFE bundle (a classic script: any static host serves it with a usable type) and both WASM
# builds: FilesetResolver picks the SIMD one where the browser has SIMD, the other elsewhere.
TASKS_VISION_FILES = ("vision_bundle.js", "package.json", "wasm/vision_wasm_internal.js",
                      "wasm/vision_wasm_internal.wasm", "wasm/vision_wasm_nosimd_internal.js",
                      "wasm/vision_wasm_nosimd_internal.wasm")
VENDOR_DIR = "vendor/tasks-vision"


def register(app: typer.Typer) -> None:
    """Add this area's commands to the ``edgemri`` app."""
    app.command("bundle")(bundle_command)


def bundle_command(
    run: Annotated[Path, typer.Argument(help="Run directory (with export/<target>/ from `edgemri convert`).")],
    out: Annotated[Path, typer.Option("--out", help="Bundle folder to write (replaced atomically).")],
    target: Annotated[str, typer.Option("--target", help="Which TFLite export to bundle (tflite-*).")] = "tflite-int8",
    android: Annotated[bool, typer.Option("--android", help="Also copy model, manifest and labels into "
                                                           "android-demo's assets.")] = False,
    android_project: Annotated[Path | None, typer.Option("--android-project", help="android-demo folder "
                                                         "(default: found from here).")] = None,
    zip_: Annotated[bool, typer.Option("--zip/--no-zip", help="Also write DIR.zip next to the folder.")] = True,
    fixtures: Annotated[int, typer.Option("--fixtures", min=0, help="Parity fixture images taken from the "
                                                                   "val split.")] = 4,
    images: Annotated[list[Path] | None, typer.Option("--images", help="Fixture source images or folders "
                                                      "instead of the val split.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out even if it is not a previous "
                                                                "bundle.")] = False,
    web: Annotated[bool, typer.Option("--web", help="Also write a static web page that classifies an image in "
                                                   "the browser (MediaPipe Tasks, vendored; docs/web.md).")] = False,
    tasks_vision: Annotated[Path | None, typer.Option("--tasks-vision", help=f"An unpacked {TASKS_VISION} npm "
                                                      "package to vendor (default: fetched once with npm into "
                                                      "~/.cache/edgemri/web).")] = None,
) -> None:
    """Package an exported TFLite model for a phone, a Pi or (--web) a browser, with parity fixtures."""
    if tasks_vision is not None and not web:
        from edgemri.errors import UsageError

        raise UsageError("--tasks-vision only makes sense with --web", "Add --web, or drop --tasks-vision")
    result = make_bundle(run, out, target=target, n_fixtures=fixtures, images=images or None,
                         make_zip=zip_, overwrite=overwrite, web=web, tasks_vision=tasks_vision)
    typer.echo(f"bundle: {result['out']} ({len(result['fixtures'])} fixtures, model {result['model_bytes']} bytes)")
    if result.get("web"):
        typer.echo(f"web:    {Path(result['out']) / 'index.html'} (serve the folder: "
                   f"python3 -m http.server -d {result['out']}, then open http://localhost:8000/)")
    if result.get("zip"):
        typer.echo(f"zip:    {result['zip']}")
    if android:
        assets = copy_to_android(Path(result["out"]), android_project)
        typer.echo(f"android: model, manifest and labels copied to {assets}")


# -- the bundle -------------------------------------------------------------------------------------
def make_bundle(run: Path, out: Path, target: str = "tflite-int8", n_fixtures: int = 4,
                images: list[Path] | None = None, make_zip: bool = True, overwrite: bool = False,
                web: bool = False, tasks_vision: Path | None = None) -> dict[str, Any]:
    """Write the bundle folder (atomically) and its zip; return a summary (also saved as bundle.json)."""
    from edgemri.atomic import atomic_dir, write_json, write_text

    model_path, sidecar = _artifact(Path(run), target)
    _check_out(Path(out), overwrite)
    from edgemri.runtime.predictor import Predictor

    predictor = Predictor.load(model_path)
    package = None
    if web:  # every check before anything is written: a refused --web leaves no folder
        check_web_model(model_path, predictor, Path(run), target)
        package = tasks_vision_package(tasks_vision)
    # The manifest as the runtime applies it: the model's own (de)quantization parameters.
    manifest = predictor.manifest.replace(input=predictor.input_spec, output=predictor.output_spec)
    sources = _fixture_sources(Path(run), n_fixtures, images)
    with atomic_dir(out) as tmp:
        _usual_permissions(tmp)  # mkdtemp makes 0700: a static host serving the folder must read it
        model_bytes = model_path.read_bytes()
        (tmp / "model.tflite").write_bytes(model_bytes)
        manifest.save(tmp / "manifest.json")
        write_text(tmp / "labels.txt", "".join(f"{c}\n" for c in manifest.classes))
        entries = write_fixtures(tmp / "fixtures", predictor, manifest, sources)
        write_text(tmp / "README.md", _device_readme(target, manifest, len(entries), web=package is not None))
        summary = {
            "target": target, "model": "model.tflite", "model_bytes": len(model_bytes),
            "model_sha256": _sha256(model_bytes), "manifest": "manifest.json", "sidecar_source": str(sidecar),
            "source_run": str(Path(run).resolve()), "classes": list(manifest.classes),
            "fixtures": [e["name"] for e in entries], "backend": predictor.backend,
        }
        if package is not None:
            summary["web"] = write_web(tmp, package)
        write_json(tmp / MARKER, summary)
    summary["out"] = str(out)
    if make_zip:
        summary["zip"] = str(zip_folder(Path(out)))
    return summary


def _artifact(run: Path, target: str) -> tuple[Path, Path]:
    from edgemri.convert.targets import TARGETS
    from edgemri.errors import RunError, UsageError
    from edgemri.runtime.manifest import sidecar_path

    tflite = [t.name for t in TARGETS.entries() if t.format == "tflite"]  # what LiteRT on a device runs
    if target not in tflite:
        others = ", ".join(n for n in tflite if n != "tflite-int8")
        raise UsageError(f"bundle packages TFLite models, not {target!r}",
                         f"Use --target tflite-int8 (or {others})")
    if not run.is_dir():
        raise RunError(f"run directory {run} not found", "Pass the run you trained and converted")
    model = TARGETS.get(target).artifact(run / "export")
    if not model.is_file():
        raise RunError(f"{model} not found", f"Run `edgemri convert {run} --target {target}` first")
    sidecar = sidecar_path(model)
    if not sidecar.is_file():
        raise RunError(f"{sidecar} (the model's manifest) not found",
                       f"Re-run `edgemri convert {run} --target {target}`, which writes it")
    return model, sidecar


def _usual_permissions(folder: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)


def _check_out(out: Path, overwrite: bool) -> None:
    from edgemri.errors import UsageError

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file", "Pass a folder path")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file() and not overwrite:
        raise UsageError(f"--out {out} exists and is not an edgemri bundle",
                         "Pick another --out, or pass --overwrite to replace it")


# -- fixtures ---------------------------------------------------------------------------------------
def _fixture_sources(run: Path, n: int, images: list[Path] | None) -> list[tuple[Path, str | None]]:
    """(image path, true label or None): --images as given, else n val images spread over classes."""
    from edgemri.errors import DataError

    if n == 0:
        return []
    if images:
        from edgemri.runtime.cli import expand_images

        return [(p, None) for p in expand_images(list(images))[:n]]
    split_path = run / "split.json"
    try:
        from edgemri.data.split import Split

        samples = Split.load(split_path, verify=False).samples("val")
    except (ImportError, DataError) as exc:
        reason = getattr(exc, "message", str(exc))
        raise DataError(f"cannot take fixture images from {split_path}: {reason}",
                        "Pass --images DIR (a few images), or --fixtures 0") from exc
    samples = [s for s in samples if Path(s.path).is_file()]
    if not samples:
        raise DataError(f"the val split in {split_path} has no readable images",
                        "Pass --images DIR (a few images), or --fixtures 0")
    by_class: dict[str, list] = {}
    for s in samples:
        by_class.setdefault(s.label, []).append(s)
    picked: list[tuple[Path, str | None]] = []
    while len(picked) < min(n, len(samples)):  # round-robin over classes: every class shows up
        for label in sorted(by_class):
            if by_class[label] and len(picked) < n:
                picked.append((Path(by_class[label].pop(0).path), label))
    return picked


def _variants(arr: Any, spec: Any) -> list[tuple[str, Any]]:
    """Derived images covering every preprocessing branch (crop, upscale, colour, alpha)."""
    import numpy as np

    from edgemri.runtime.preprocess import resize

    h, w = arr.shape[:2]
    gray = arr if arr.ndim == 2 else arr[..., 0]
    rgb = np.stack([gray, 255 - gray, (gray // 2 + 40).astype(np.uint8)], axis=-1).astype(np.uint8)
    crop = arr[:, w // 5: max(w // 5 + 8, (4 * w) // 5)] if w >= 10 else arr
    small = resize(arr if arr.ndim == 3 else arr[..., None], max(3, spec.height // 2 - 1),
                   max(3, (spec.width * 3) // 8))
    ramp = np.linspace(0, 255, w).round().astype(np.uint8)
    rgba = np.dstack([rgb, np.broadcast_to(ramp, (h, w))]).astype(np.uint8)
    return [("crop", crop), ("small", small[..., 0] if small.shape[-1] == 1 else small),
            ("rgb", rgb), ("rgba", rgba)]


def write_fixtures(folder: Path, predictor: Any, manifest: Any, sources: list[tuple[Path, str | None]]) -> list[dict]:
    """PNG + input tensor + raw output + probabilities per image, and fixtures.json describing them."""
    import numpy as np
    from PIL import Image

    from edgemri.atomic import write_bytes, write_json
    from edgemri.runtime.images import load_image
    from edgemri.runtime.preprocess import postprocess, prepare_pixels, to_model_input

    folder.mkdir(parents=True, exist_ok=True)
    spec, out_spec = predictor.input_spec, predictor.output_spec
    items: list[tuple[str, Any, str | None, str]] = []
    for i, (path, label) in enumerate(sources):
        arr = load_image(path)
        items.append((f"{i:02d}-{_slug(label or path.stem)}", arr, label, str(path)))
        if i == 0:
            items += [(f"{i:02d}-{kind}", v, label, f"{kind} variant of {path.name}") for kind, v in _variants(arr, spec)]
    entries = []
    for name, arr, label, source in items:
        png = folder / f"{name}.png"
        img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8))  # L, RGB or RGBA by shape
        mode = img.mode
        img.save(png)
        canonical = load_image(png)  # exactly what any runtime decodes from the PNG
        x = to_model_input(prepare_pixels(canonical, spec), spec)
        raw = predictor.run_raw(x)
        probs = postprocess(raw, out_spec)[0]
        write_bytes(folder / f"{name}.input.bin", np.ascontiguousarray(x).astype(x.dtype.newbyteorder("<")).tobytes())
        write_bytes(folder / f"{name}.output.bin", np.ascontiguousarray(raw).astype(raw.dtype.newbyteorder("<")).tobytes())
        entries.append({
            "name": name, "image": png.name, "source": source, "label": label, "mode": mode,
            "width": int(arr.shape[1]), "height": int(arr.shape[0]),
            "input": f"{name}.input.bin", "output": f"{name}.output.bin",
            "output_shape": list(raw.shape), "output_dtype": str(raw.dtype),
            "probabilities": [float(p) for p in probs],
            "ranking": [int(k) for k in np.argsort(-probs, kind="stable")],
            "predicted": manifest.classes[int(np.argmax(probs))],
        })
    write_json(folder / "fixtures.json", {
        "schema": FIXTURES_SCHEMA, "version": FIXTURES_VERSION, "manifest": "../manifest.json",
        "byte_order": "little",
        "input": {"shape": list(spec.shape), "dtype": spec.dtype, "layout": spec.layout},
        "fixtures": entries,
    })
    return entries


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:40] or "image"


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# -- zip and Android ---------------------------------------------------------------------------------
def zip_folder(folder: Path) -> Path:
    """``<folder>.zip`` beside the folder, members under ``<folder name>/``, written atomically."""
    import zipfile

    from edgemri.atomic import atomic_path

    dest = folder.with_name(folder.name + ".zip")
    with atomic_path(dest) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return dest


def find_android_project(start: Path | None = None) -> Path | None:
    """The android-demo folder: from ``start`` (default cwd) upwards, then beside the package."""
    here = (start or Path.cwd()).resolve()
    candidates = [p / "android-demo" for p in (here, *here.parents)]
    candidates.append(Path(__file__).resolve().parents[1] / "android-demo")
    for c in candidates:
        if (c / "app" / "src" / "main").is_dir():
            return c
    return None


def copy_to_android(bundle: Path, project: Path | None = None) -> Path:
    """Copy model.tflite, manifest.json and labels.txt into app/src/main/assets (atomic per file)."""
    from edgemri.atomic import write_bytes
    from edgemri.errors import UsageError

    project = project or find_android_project()
    if project is None or not (project / "app" / "src" / "main").is_dir():
        raise UsageError(f"android-demo project not found{f' at {project}' if project else ''}",
                         "Run from the edgemri checkout or pass --android-project PATH")
    assets = project / "app" / "src" / "main" / "assets"
    for name in ("model.tflite", "manifest.json", "labels.txt"):
        write_bytes(assets / name, (bundle / name).read_bytes())
    return assets


# -- the web page ----------------------------------------------------------------------------------
def check_web_model(model: Path, predictor: Any, run: Path, target: str) -> None:
    """Refuse a model MediaPipe Tasks would refuse in the page, with the command that fixes it."""
    from edgemri.errors import MissingExtraError, UsageError

    fix = f"Re-convert it: `edgemri convert {run} --target {target}` (uint8 I/O is the default), then bundle again"
    for what, spec in (("input", predictor.input_spec), ("output", predictor.output_spec)):
        if spec.dtype not in ("uint8", "float32"):
            raise UsageError(f"--web runs {model} in MediaPipe Tasks, which refuses its {spec.dtype} {what}", fix)
    try:
        from edgemri.convert.inspect import inspect_model

        problems = inspect_model(model)["mediapipe"]
    except (ImportError, MissingExtraError):  # no flatbuffers/tensorflow schema here: the dtype check stands
        return
    if problems:
        raise UsageError(f"--web: MediaPipe Tasks would refuse {model}: {problems[0]}", fix)


def web_cache() -> Path:
    """Where fetched npm packages are kept: ``$XDG_CACHE_HOME/edgemri/web`` (default ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgemri" / "web"


def tasks_vision_package(given: Path | None = None) -> Path:
    """An unpacked ``@mediapipe/tasks-vision``: ``given``, else the cached pinned version (fetched once)."""
    if given is not None:
        return _checked_package(Path(given))
    cached = web_cache() / f"tasks-vision-{TASKS_VISION_VERSION}"
    if not (cached / "package.json").is_file():
        fetch_npm_package(f"{TASKS_VISION}@{TASKS_VISION_VERSION}", cached)
    return _checked_package(cached)


def _checked_package(folder: Path) -> Path:
    """``folder`` (or ``folder/package``, as ``npm pack`` unpacks) if it holds every vendored file."""
    import json

    from edgemri.errors import UsageError

    root = folder / "package" if (folder / "package" / "package.json").is_file() else folder
    missing = [f for f in TASKS_VISION_FILES if not (root / f).is_file()]
    try:
        name = json.loads((root / "package.json").read_text()).get("name") if not missing else None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{root / 'package.json'} is unreadable: {exc}",
                         f"Pass an unpacked {TASKS_VISION} package to --tasks-vision") from exc
    if missing or name != TASKS_VISION:
        what = f"lacks {missing[0]}" if missing else f"is {name!r}"
        raise UsageError(f"{folder} is not an unpacked {TASKS_VISION} package: it {what}",
                         f"`npm pack {TASKS_VISION}@{TASKS_VISION_VERSION}` and untar it, or drop --tasks-vision "
                         "to let edgemri fetch it")
    return root


def fetch_npm_package(spec: str, dest: Path) -> None:
    """``npm pack SPEC`` and unpack it to ``dest`` (atomically: a failed fetch leaves no half folder)."""
    import shutil
    import subprocess
    import tarfile
    import tempfile

    from edgemri.errors import MissingExtraError

    hint = f"Install Node.js and npm (Debian: apt-get install npm), or pass --tasks-vision DIR (`npm pack {spec}`, untarred)"
    npm = shutil.which("npm")
    if npm is None:
        raise MissingExtraError(f"npm not found: --web vendors {spec} into the page, fetched once into {dest.parent}",
                                hint)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as tmp:
        try:
            proc = subprocess.run([npm, "pack", spec, "--pack-destination", tmp, "--no-fund", "--no-audit"],
                                  capture_output=True, text=True, timeout=600, check=False, cwd=tmp)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MissingExtraError(f"npm pack {spec} did not run: {exc}", hint) from exc
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines()
                     if ln.strip() and "code" not in ln.split()[:3] and "complete log" not in ln]
            reason = lines[0] if lines else f"exit code {proc.returncode}"  # npm's first real error line
            raise MissingExtraError(f"npm pack {spec} failed (no network or npm registry?): {reason}", hint)
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(Path(tmp) / "x", filter="data")
        try:
            os.replace(Path(tmp) / "x" / "package", dest)
        except OSError:  # another process fetched it meanwhile: keep theirs
            if not (dest / "package.json").is_file():
                raise


def write_web(folder: Path, package: Path) -> dict[str, Any]:
    """The page (edgemri/web templates) and the vendored MediaPipe files into the bundle folder."""
    import importlib.resources
    import json

    from edgemri.atomic import write_bytes

    templates = importlib.resources.files("edgemri") / "web"
    for name in WEB_FILES:
        write_bytes(folder / name, (templates / name).read_bytes())
    vendored = 0
    for rel in TASKS_VISION_FILES:
        data = (package / rel).read_bytes()
        write_bytes(folder / VENDOR_DIR / rel, data)
        vendored += len(data)
    version = json.loads((package / "package.json").read_text()).get("version")
    return {"page": "index.html", "runtime": f"{TASKS_VISION}@{version}", "vendor": VENDOR_DIR,
            "vendored_bytes": vendored}


def _device_readme(target: str, manifest: Any, n_fixtures: int, web: bool = False) -> str:
    spec = manifest.input
    quant = (f"{spec.dtype} input: q = clip(rint((p * {spec.scale!r} + {spec.offset!r}) / {spec.quantization.scale!r}) "
             f"+ {spec.quantization.zero_point})" if spec.quantization else
             f"float32 input: x = p * {spec.scale!r} + {spec.offset!r}")
    return f"""# edgemri device bundle ({target})

Task `{manifest.task}`, classes: {', '.join(manifest.classes)}.
Input {spec.height}x{spec.width}x{spec.channels} {spec.layout}, colour `{spec.color}`, resize `{spec.resize}`;
{quant}. Output `{manifest.output.kind}` ({manifest.output.dtype}).

| file | what |
|---|---|
| model.tflite | the model (a zip with its manifest is appended; TFLite ignores it) |
| manifest.json | labels, input size, normalization, (de)quantization: read by the app and `edgemri predict` |
| labels.txt | class names, one per line, in output order |
| fixtures/ | {n_fixtures} PNG images with the exact Python input tensors and outputs (parity tests) |

Raspberry Pi (`pip install "edgemri[litert]"`):

    edgemri predict model.tflite image.png --top 3 --manifest manifest.json

Android: copy model.tflite and manifest.json into `android-demo/app/src/main/assets/`
(`edgemri bundle RUN --target {target} --out DIR --android` does it), then build the app
(android-demo/README.md). The JVM parity test: `android-demo/core/run-tests.sh fixtures/`.

{_WEB_README if web else ""}Not a medical device: research and engineering demonstration only.
"""


_WEB_README = f"""Browser (`--web`): `index.html` classifies a dropped or picked image with this model in
MediaPipe Tasks ({VENDOR_DIR}/, WASM on the CPU; nothing is fetched from elsewhere). Serve the
folder from any static host, e.g. `python3 -m http.server` here, and open http://localhost:8000/
(browsers do not let a page read its model from file://). docs/web.md has the details.

"""

