/*
 * The page of `edgemri bundle --web`: MediaPipe Tasks' ImageClassifier (vendored WASM, CPU) on the
 * bundle's model.tflite, fed the pixels edgemri feeds it (preprocess.js, from manifest.json).
 *
 * Everything is fetched from this folder: no CDN, no server code. `document.body.dataset.state`
 * (loading | ready | busy | error) and `window.edgemriLast` let a test (or you) follow it.
 */
(function () {
  "use strict";

  const P = window.edgemriPreprocess;
  const $ = (id) => document.getElementById(id);
  const WASM_DIR = new URL("vendor/tasks-vision/wasm", location.href).href;
  let manifest = null;
  let classifier = null;

  function setState(state, text) {
    document.body.dataset.state = state;
    $("status").textContent = text;
  }

  function showMessage(text) {
    $("message").textContent = text;
    $("message").hidden = !text;
  }

  async function fetchOk(path) {
    const res = await fetch(path);
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return res;
  }

  function describe(m) {
    const s = m.input;
    const q = s.quantization ? ` (scale ${s.quantization.scale.toPrecision(4)}, zero point ${s.quantization.zero_point})` : "";
    const target = (m.provenance && m.provenance.target) || "tflite";
    return `${target}, ${m.arch || "model"}: ${s.height}x${s.width} ${s.color}, ${s.dtype} input${q}; ` +
      `classes: ${m.classes.join(", ")}.`;
  }

  async function init() {
    if (location.protocol === "file:") {
      throw new Error("browsers do not let a page read files next to it from file://: serve this folder " +
        "over http(s), e.g. `python3 -m http.server` in it, then open http://localhost:8000/");
    }
    manifest = await (await fetchOk("manifest.json")).json();
    $("task").textContent = manifest.task;
    $("model-info").textContent = describe(manifest);
    const fileset = await Vision.FilesetResolver.forVisionTasks(WASM_DIR);
    classifier = await Vision.ImageClassifier.createFromOptions(fileset, {
      baseOptions: { modelAssetPath: new URL("model.tflite", location.href).href, delegate: "CPU" },
      runningMode: "IMAGE",
      maxResults: -1,
    });
    $("self-check").disabled = false;
    setState("ready", "Ready: drop an image or pick one.");
  }

  /** Decode like edgemri: EXIF orientation applied, no colour management, alpha composited over black. */
  async function decode(blob) {
    const bmp = await createImageBitmap(blob, {
      colorSpaceConversion: "none", premultiplyAlpha: "premultiply", imageOrientation: "from-image",
    });
    const canvas = document.createElement("canvas");
    canvas.width = bmp.width;
    canvas.height = bmp.height;
    const ctx = canvas.getContext("2d", { alpha: false, willReadFrequently: true });
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, bmp.width, bmp.height);
    ctx.drawImage(bmp, 0, 0);
    bmp.close();
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    return { width: canvas.width, height: canvas.height, channels: 4, data };
  }

  /** Prepared pixels at the model's size -> MediaPipe -> probabilities in class order. */
  function classifyPixels(prepared) {
    const fed = P.modelPixels(prepared, manifest.input);
    const image = new ImageData(P.toRgba(fed), fed.width, fed.height);
    const t0 = performance.now();
    const result = classifier.classify(image);
    const ms = performance.now() - t0;
    const scores = manifest.classes.map(() => 0);
    for (const c of result.classifications[0].categories) scores[c.index] = c.score;
    const shown = new ImageData(P.toRgba(prepared), prepared.width, prepared.height);
    return { probs: P.postprocess(scores, manifest.output.kind), ms, image: shown, fed };
  }

  async function classifyBlob(blob) {
    const rgba = await decode(blob); // throws for anything that is not a decodable image
    const t0 = performance.now();
    const prepared = P.prepare(rgba, manifest.input);
    const prepMs = performance.now() - t0;
    const out = classifyPixels(prepared);
    const order = P.ranking(out.probs);
    return { ...out, prepMs, prepared, order, top1: manifest.classes[order[0]], source: rgba };
  }

  function render(file, r) {
    $("file-name").textContent = `${file.name} (${r.source.width}x${r.source.height})`;
    const url = URL.createObjectURL(file);
    $("preview").onload = () => URL.revokeObjectURL(url);
    $("preview").src = url;
    const canvas = $("model-input");
    canvas.width = r.image.width;
    canvas.height = r.image.height;
    canvas.getContext("2d").putImageData(r.image, 0, 0);
    $("input-caption").textContent = `what the model sees (${r.image.width}x${r.image.height} ${manifest.input.color})`;
    $("top1").textContent = r.top1;
    const body = $("classes").tBodies[0];
    body.replaceChildren(...r.order.map((k, rank) => {
      const tr = document.createElement("tr");
      if (rank === 0) tr.className = "top";
      const pct = (100 * r.probs[k]).toFixed(1);
      tr.innerHTML = `<td></td><td class="p">${pct}%</td><td class="bar"><span style="width:${pct}%"></span></td>`;
      tr.firstChild.textContent = manifest.classes[k];
      return tr;
    }));
    $("latency").textContent = `inference ${r.ms.toFixed(1)} ms, preprocessing ${r.prepMs.toFixed(1)} ms ` +
      "(MediaPipe Tasks, WebAssembly on the CPU, in this browser)";
    $("result").hidden = false;
    $("result").dataset.file = file.name;
  }

  async function handleFile(file) {
    await ready;
    if (!classifier) return;
    showMessage("");
    setState("busy", `Classifying ${file.name}…`);
    let r;
    try {
      r = await classifyBlob(file);
    } catch (err) {
      $("result").hidden = true;
      window.edgemriLast = { file: file.name, error: "not-an-image" };
      showMessage(`${file.name} is not an image this page can read (${file.type || "unknown type"}): ` +
        "pick a PNG, JPEG, BMP, GIF or WebP file (DICOM and 16-bit images: use `edgemri predict`).");
      setState("ready", "Ready: drop an image or pick one.");
      return;
    }
    render(file, r);
    window.edgemriLast = { file: file.name, top1: r.top1, probabilities: r.probs, inferenceMs: r.ms,
      pixels: Array.from(r.prepared.data), fed: Array.from(r.fed.data) };
    setState("ready", `Classified ${file.name}.`);
  }

  /** Replays fixtures/fixtures.json (what `edgemri predict` said for each PNG) through this page. */
  async function selfCheck() {
    await ready;
    const out = $("self-check-result");
    out.textContent = "running…";
    try {
      const fx = await (await fetchOk("fixtures/fixtures.json")).json();
      let agree = 0;
      const rows = [];
      for (const e of fx.fixtures) {
        const r = await classifyBlob(await (await fetchOk(`fixtures/${e.image}`)).blob());
        agree += r.top1 === e.predicted ? 1 : 0;
        rows.push({ name: e.name, page: r.top1, edgemri: e.predicted });
      }
      out.textContent = `${agree}/${fx.fixtures.length} fixtures: top-1 agrees with edgemri predict`;
      out.dataset.agree = String(agree);
      out.dataset.total = String(fx.fixtures.length);
      window.edgemriSelfCheck = rows;
    } catch (err) {
      out.textContent = `self-check failed: ${err.message}`;
    }
  }

  const ready = init().catch((err) => {
    setState("error", `Could not load the model: ${err && err.message ? err.message : err}`);
  });

  $("file").addEventListener("change", (ev) => {
    if (ev.target.files.length) handleFile(ev.target.files[0]);
    ev.target.value = "";
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    if (ev.dataTransfer.files.length) handleFile(ev.dataTransfer.files[0]);
  });
  $("self-check").addEventListener("click", selfCheck);
})();
