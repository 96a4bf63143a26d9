"""`edgemri bundle --web`: the page's preprocessing port, the folder it writes, its refusals, and
the page itself in a real headless Chromium.

* ``preprocess.js`` runs in Node against ``prepare_pixels`` on random images (every colour mode,
  both resize methods, up- and downscaling, a side over 128 px for NumPy's pairwise sum), and its
  ``modelPixels`` against ``to_model_input`` for uint8 inputs: equal bytes, or the page would not
  feed the model what ``edgemri predict`` feeds it.
* The browser test builds the bundle from a tiny trained run converted to tflite-int8 (uint8
  I/O), serves it with ``http.server`` in a thread, and drives Debian's ``chromium`` with npm's
  ``playwright-core`` (a short Node script, below): it feeds every fixture PNG through the file
  input as a user would and checks the displayed top-1 against ``fixtures.json`` (what ``edgemri
  predict`` said), the pixels the page prepared and the bytes it gave MediaPipe against edgemri's
  pixels and input tensor, the probabilities against edgemri's, the page's self-check button,
  the message for a file that is not an image, and that every request stayed on the local server.

Without chromium, node or playwright-core (``$XDG_CACHE_HOME/edgemri/web/node/node_modules``, or
``EDGEMRI_PLAYWRIGHT_NODE_PATH``) the browser tests skip; CI installs them (.ci/run) and sets
EDGEMRI_REQUIRE_BROWSER=1, which turns the skip into a failure. ``EDGEMRI_WEB_SCREENSHOT=PATH``
saves the page's screenshot there (docs/web.png is made so).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from edgemri.bundle import TASKS_VISION, TASKS_VISION_FILES, VENDOR_DIR, WEB_FILES, web_cache
from edgemri.cli import main
from edgemri.runtime.manifest import InputSpec, Manifest, Quantization, sidecar_path

WEB_DIR = Path(__file__).resolve().parents[1] / "edgemri" / "web"
# What works for Debian's chromium here (no GPU, no network, root); playwright adds --headless,
# --no-sandbox (chromiumSandbox false) and a fresh --user-data-dir itself.
CHROMIUM_FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000


def _unavailable(what: str) -> None:
    """Skip on a dev box without the browser tooling; fail where CI promised it."""
    if os.environ.get("EDGEMRI_REQUIRE_BROWSER"):
        pytest.fail(f"{what} (EDGEMRI_REQUIRE_BROWSER is set: .ci/run installs it)")
    pytest.skip(what)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed (Debian: apt-get install nodejs)")
    return str(node)


def _chromium() -> str:
    found = os.environ.get("EDGEMRI_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        _unavailable("chromium is not installed (Debian: apt-get install chromium)")
    return str(found)


def _playwright_path() -> Path:
    path = Path(os.environ.get("EDGEMRI_PLAYWRIGHT_NODE_PATH") or web_cache() / "node" / "node_modules")
    if not (path / "playwright-core" / "package.json").is_file():
        _unavailable(f"npm's playwright-core is not in {path} "
                     f"(npm install --prefix {path.parent} playwright-core)")
    return path


# -- preprocess.js == runtime/preprocess.py ---------------------------------------------------------
PORT_SCRIPT = """
const fs = require("fs");
require(process.argv[2]);
const P = globalThis.edgemriPreprocess;
const cases = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const out = cases.map((c) => {
  const img = { width: c.width, height: c.height, channels: 4, data: Uint8Array.from(Buffer.from(c.rgba, "base64")) };
  const prepared = P.prepare(img, c.spec);
  return [prepared, P.modelPixels(prepared, c.spec)].map((r) => Buffer.from(r.data).toString("base64"));
});
process.stdout.write(JSON.stringify(out));
"""


def _port_cases() -> list[tuple[np.ndarray, InputSpec]]:
    rng = np.random.default_rng(7)
    shapes = [(48, 48), (7, 5), (300, 140), (16, 16), (33, 61), (1, 1)]
    cases = []
    for i, (h, w) in enumerate(shapes):
        for color in ("gray3", "gray", "rgb"):
            for method in ("bilinear", "nearest"):
                gray = i % 2 == 0 and color != "rgb"  # gray images arrive as R = G = B in a browser
                arr = rng.integers(0, 256, (h, w) if gray else (h, w, 3), dtype=np.uint8)
                size = (16, 16) if i % 3 else (32, 24)
                channels = 1 if color == "gray" else 3
                # uint8 inputs: a calibrated quantization (not the pixel itself) and the identity one
                quant = [None, Quantization(0.0077204, 126), Quantization(1 / 127.5, 128)][(i + len(cases)) % 3]
                cases.append((arr, InputSpec(height=size[0], width=size[1], channels=channels, color=color,
                                             resize=method, dtype="uint8" if quant else "float32",
                                             quantization=quant)))
    return cases


@pytest.mark.runtime  # numpy, the runtime and node: runs in the TensorFlow-free venv too
def test_preprocess_js_matches_python_byte_for_byte(tmp_path: Path) -> None:
    import base64

    from edgemri.runtime.preprocess import prepare_pixels, to_model_input

    node = _node()
    cases = _port_cases()
    payload = []
    for arr, spec in cases:
        rgb = np.repeat(arr[..., None], 3, axis=-1) if arr.ndim == 2 else arr
        rgba = np.dstack([rgb, np.full(arr.shape[:2], 255, np.uint8)])
        payload.append({"width": arr.shape[1], "height": arr.shape[0], "rgba": base64.b64encode(rgba.tobytes()).decode(),
                        "spec": {"height": spec.height, "width": spec.width, "color": spec.color,
                                 "resize": spec.resize, "scale": spec.scale, "offset": spec.offset,
                                 "dtype": spec.dtype, "quantization": spec.quantization and spec.quantization.to_dict()}})
    (tmp_path / "cases.json").write_text(json.dumps(payload))
    (tmp_path / "port.js").write_text(PORT_SCRIPT)
    proc = subprocess.run([node, str(tmp_path / "port.js"), str(WEB_DIR / "preprocess.js"), str(tmp_path / "cases.json")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert len(got) == len(cases)
    assert sum(spec.quantization is not None for _, spec in cases) >= len(cases) // 2
    for (arr, spec), (b64, fed64) in zip(cases, got):
        want = prepare_pixels(arr, spec)
        js = np.frombuffer(base64.b64decode(b64), dtype=np.uint8).reshape(want.shape)
        assert np.array_equal(js, want), (arr.shape, spec.color, spec.resize, int(np.abs(js.astype(int) - want).max()))
        # what the page gives MediaPipe: the quantized input tensor for uint8 models, else the pixels
        tensor = to_model_input(want, spec)[0] if spec.quantization else want
        fed = np.frombuffer(base64.b64decode(fed64), dtype=np.uint8).reshape(want.shape)
        assert np.array_equal(fed, tensor), (arr.shape, spec.color, spec.quantization)


# -- the folder and its refusals (a stand-in package: no npm, no network) ----------------------------
@pytest.fixture
def fake_tasks_vision(tmp_path: Path) -> Path:
    root = tmp_path / "tasks-vision" / "package"
    for rel in TASKS_VISION_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(f"stand-in {rel}".encode())
    (root / "package.json").write_text(json.dumps({"name": TASKS_VISION, "version": "0.0.0-test"}))
    return root.parent


@pytest.fixture
def float_run(tmp_path: Path, make_export_run, tiny_models) -> Path:
    """A run whose tflite-fp32 carries TFLite Model Metadata (what MediaPipe loads)."""
    from edgemri.convert.artifacts import write_tflite
    from edgemri.convert.tflite import with_metadata

    run = make_export_run(tmp_path)
    model = run / "export/tflite-fp32/model.tflite"
    manifest = Manifest.load(sidecar_path(model))
    write_tflite(model, with_metadata(tiny_models.plain("tflite_fp32").read_bytes(), manifest), manifest)
    return run


def test_web_bundle_layout(tmp_path, float_run, fake_tasks_vision, varied_images):
    varied_images(tmp_path / "imgs")
    out = tmp_path / "web"
    assert main(["bundle", str(float_run), "--target", "tflite-fp32", "--out", str(out), "--web",
                 "--tasks-vision", str(fake_tasks_vision), "--images", str(tmp_path / "imgs"), "--fixtures", "2"]) == 0
    for name in WEB_FILES:
        assert (out / name).read_bytes() == (WEB_DIR / name).read_bytes(), name
    for rel in TASKS_VISION_FILES:
        assert (out / VENDOR_DIR / rel).read_bytes() == (fake_tasks_vision / "package" / rel).read_bytes(), rel
    page = (out / "index.html").read_text()
    # every script and stylesheet the page loads is in the folder: nothing from a CDN
    for ref in ("vendor/tasks-vision/vision_bundle.js", "preprocess.js", "app.js", "style.css"):
        assert f'"{ref}"' in page and (out / ref).is_file(), ref
    assert "http://" not in page and "https://" not in page
    summary = json.loads((out / "bundle.json").read_text())
    assert summary["web"]["runtime"] == f"{TASKS_VISION}@0.0.0-test"
    assert "python3 -m http.server" in (out / "README.md").read_text()
    assert (out / "fixtures/fixtures.json").is_file() and (out / "model.tflite").is_file()
    with zipfile.ZipFile(tmp_path / "web.zip") as zf:
        assert f"web/{VENDOR_DIR}/wasm/vision_wasm_internal.wasm" in zf.namelist()


def test_web_refuses_int8_io_and_bad_package(tmp_path, capsys, make_export_run, float_run, fake_tasks_vision):
    run = make_export_run(tmp_path / "int8")  # the committed tiny int8 model: int8 I/O, no metadata
    out = tmp_path / "o"
    rc = main(["bundle", str(run), "--out", str(out), "--web", "--tasks-vision", str(fake_tasks_vision),
               "--fixtures", "0"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1
    assert "MediaPipe" in err and "int8" in err and f"edgemri convert {run} --target tflite-int8" in err
    assert not out.exists()
    # a folder that is not the npm package, named as such
    (tmp_path / "empty").mkdir()
    assert main(["bundle", str(float_run), "--target", "tflite-fp32", "--out", str(out), "--web",
                 "--tasks-vision", str(tmp_path / "empty"), "--fixtures", "0"]) != 0
    err = capsys.readouterr().err
    assert f"not an unpacked {TASKS_VISION} package" in err and "vision_bundle.js" in err and not out.exists()
    # --tasks-vision without --web
    assert main(["bundle", str(float_run), "--out", str(out), "--tasks-vision", str(fake_tasks_vision)]) != 0
    assert "--web" in capsys.readouterr().err


@pytest.mark.parametrize("npm", ["missing", "offline"])
def test_web_without_npm_or_network_is_one_line(tmp_path, capsys, float_run, monkeypatch, npm):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if npm == "offline":  # an npm that fails as it does without a network
        fake = bin_dir / "npm"
        fake.write_text("#!/bin/sh\necho 'npm error code EAI_AGAIN' >&2\n"
                        "echo 'npm error request to the registry failed, reason: getaddrinfo EAI_AGAIN' >&2\n"
                        "echo 'npm error A complete log of this run can be found in: /x.log' >&2\nexit 1\n")
        fake.chmod(0o755)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # nothing cached
    monkeypatch.setenv("PATH", str(bin_dir))
    out = tmp_path / "o"
    rc = main(["bundle", str(float_run), "--target", "tflite-fp32", "--out", str(out), "--web", "--fixtures", "0"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1
    assert ("npm not found" if npm == "missing" else "getaddrinfo EAI_AGAIN") in err, err
    assert "--tasks-vision" in err and not out.exists()
    assert not any((tmp_path / "cache").rglob("package.json"))  # no half-fetched package either


# -- the page in Chromium -----------------------------------------------------------------------------
DRIVER = r"""
const { chromium } = require("playwright-core");
const path = require("path");
const cfg = JSON.parse(process.argv[2]);
const ready = (n) => window.edgemriLast && window.edgemriLast.file === n && document.body.dataset.state === "ready";
(async () => {
  const out = { logs: [], requests: [], images: [] };
  const browser = await chromium.launch({ executablePath: cfg.chromium, headless: true, args: cfg.args });
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 640 } });
    page.on("console", (m) => out.logs.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => out.logs.push(`pageerror: ${e.message}`));
    page.on("request", (r) => out.requests.push(r.url()));
    await page.goto(cfg.url);
    await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state), null,
                               { timeout: cfg.timeout_ms });
    out.state = await page.evaluate(() => ({ state: document.body.dataset.state,
                                            status: document.getElementById("status").textContent }));
    if (out.state.state !== "ready") return;
    for (const f of cfg.images) {
      await page.setInputFiles("#file", f);
      await page.waitForFunction(ready, path.basename(f), { timeout: cfg.timeout_ms });
      out.images.push(await page.evaluate(() => ({ ...window.edgemriLast,
        shown: document.getElementById("top1").textContent,
        rows: Array.from(document.querySelectorAll("#classes tbody tr"), (tr) => tr.textContent),
        latency: document.getElementById("latency").textContent })));
    }
    await page.click("#self-check");
    await page.waitForFunction(() => document.getElementById("self-check-result").dataset.total, null,
                               { timeout: cfg.timeout_ms });
    out.selfCheck = await page.evaluate(() => ({ ...document.getElementById("self-check-result").dataset }));
    await page.screenshot({ path: cfg.screenshot, fullPage: true });
    await page.setInputFiles("#file", cfg.not_image);
    await page.waitForFunction(ready, path.basename(cfg.not_image), { timeout: cfg.timeout_ms });
    out.notImage = await page.evaluate(() => ({ last: window.edgemriLast,
      message: document.getElementById("message").textContent, shown: !document.getElementById("message").hidden,
      resultHidden: document.getElementById("result").hidden }));
  } finally {
    await browser.close();
    process.stdout.write(JSON.stringify(out));
  }
})().catch((e) => { console.error((e && e.stack) || e); process.exit(1); });
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Any]:
    """``serve(folder)`` -> its URL on 127.0.0.1: a plain static server, as any host would be."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(folder: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                 functools.partial(_QuietHandler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")  # session, like make_run: so it is set up (or skips) before training
def browser() -> SimpleNamespace:
    """Chromium, node and playwright-core, or a skip (a failure under EDGEMRI_REQUIRE_BROWSER)."""
    return SimpleNamespace(chromium=_chromium(), node=_node(), playwright=_playwright_path())


@pytest.fixture(scope="module")
def web_bundle(browser, make_run, tmp_path_factory) -> SimpleNamespace:
    """A tiny trained run -> tflite-int8 (uint8 I/O, the default) -> ``bundle --web`` (real MediaPipe).

    ``browser`` comes first so a box without one skips before anything is trained."""
    from edgemri.convert.api import convert
    from edgemri.convert.targets import DEFAULT_IO

    root = tmp_path_factory.mktemp("web")
    run = make_run(root, epochs=4)
    [result] = convert(run.root, ["tflite-int8"], calib=16, min_agreement=0.0, progress=False, io=DEFAULT_IO)
    assert result.status == "ok", result.reason
    out = root / "bundle"
    assert main(["bundle", str(run.root), "--target", "tflite-int8", "--out", str(out), "--web", "--fixtures", "6",
                 "--no-zip"]) == 0
    return SimpleNamespace(out=out, fixtures=json.loads((out / "fixtures/fixtures.json").read_text())["fixtures"])


@pytest.mark.slow
def test_page_in_chromium_agrees_with_edgemri_predict(browser, web_bundle, serve, tmp_path):
    from edgemri.runtime.images import load_image
    from edgemri.runtime.preprocess import prepare_pixels

    out, fixtures = web_bundle.out, web_bundle.fixtures
    manifest = Manifest.load(out / "manifest.json")
    assert manifest.input.dtype == "uint8"  # the model the page runs: int8 inside, uint8 I/O
    url = serve(out)
    (tmp_path / "notes.txt").write_text("not a picture\n")
    shot = Path(os.environ.get("EDGEMRI_WEB_SCREENSHOT") or tmp_path / "page.png")
    cfg = {"chromium": browser.chromium, "args": CHROMIUM_FLAGS, "url": url + "index.html", "timeout_ms": TIMEOUT_MS,
           "images": [str(out / "fixtures" / e["image"]) for e in fixtures], "screenshot": str(shot),
           "not_image": str(tmp_path / "notes.txt")}
    (tmp_path / "driver.js").write_text(DRIVER)
    env = {**os.environ, "NODE_PATH": str(browser.playwright)}
    proc = subprocess.run([browser.node, str(tmp_path / "driver.js"), json.dumps(cfg)], capture_output=True, text=True,
                          timeout=180, check=False, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    assert got["state"]["state"] == "ready", (got["state"], got["logs"][-10:])

    assert len(got["images"]) == len(fixtures) >= 10
    for e, page in zip(fixtures, got["images"]):
        assert page["file"] == e["image"]
        assert page["shown"] == page["top1"] == e["predicted"], (e["name"], page["shown"], e["probabilities"])
        assert len(page["rows"]) == len(manifest.classes) and page["rows"][0].startswith(e["predicted"])
        assert "ms" in page["latency"]
        # the pixels the page prepared, and the bytes it gave MediaPipe (= the model's uint8 input)
        want = prepare_pixels(load_image(out / "fixtures" / e["image"]), manifest.input)
        px = np.asarray(page["pixels"], dtype=np.int16).reshape(want.shape)
        fed = np.asarray(page["fed"], dtype=np.int16)
        x = np.frombuffer((out / "fixtures" / e["input"]).read_bytes(), dtype=np.uint8).astype(np.int16)
        if e["mode"] == "RGBA":  # the canvas composites alpha over black in Skia's rounding: exact here, allow 1
            assert int(np.abs(px - want).max()) <= 1 and int(np.abs(fed - x).max()) <= 2, e["name"]
            continue
        assert np.array_equal(px, want) and np.array_equal(fed, x), e["name"]
        # same input tensor, so the same raw output: probabilities equal up to float32 rounding
        assert max(abs(a - b) for a, b in zip(page["probabilities"], e["probabilities"])) < 1e-6, e["name"]
    assert got["selfCheck"]["agree"] == got["selfCheck"]["total"] == str(len(fixtures))

    bad = got["notImage"]
    assert bad["shown"] and bad["resultHidden"] and bad["last"]["error"] == "not-an-image"
    assert "notes.txt is not an image" in bad["message"]
    assert all(r.startswith(url) for r in got["requests"] if not r.startswith(("data:", "blob:"))), \
        [r for r in got["requests"] if not r.startswith(url)]
    assert shot.stat().st_size > 10_000
