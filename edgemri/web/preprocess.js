/*
 * edgemri's preprocessing (runtime/preprocess.py), ported operation for operation like the Java
 * core (android-demo/core/.../Resize.java): colour mode, then the separable resize with NumPy's
 * pairwise sum for the filter total, float64 sums in ascending tap order, rounding half to even.
 * The page hands MediaPipe pixels already at the model's size and colour, so MediaPipe's own
 * resize is a no-op and the model sees what `edgemri predict` feeds it.
 *
 * A classic script (no modules: any static host serves it); tests load it in Node.
 */
(function (root) {
  "use strict";

  const LUMA = [0.299, 0.587, 0.114];

  /** Half to even, like numpy.rint and Java's Math.rint. */
  function rint(x) {
    const f = Math.floor(x);
    const d = x - f;
    if (d < 0.5) return f;
    if (d > 0.5) return f + 1;
    return f % 2 === 0 ? f : f + 1;
  }

  function clip8(v) {
    return v < 0 ? 0 : v > 255 ? 255 : v;
  }

  /** NumPy's pairwise summation of a float64 array (np.sum on a contiguous array). */
  function pairwiseSum(a, start, n) {
    if (n < 8) {
      let res = 0.0;
      for (let i = 0; i < n; i++) res += a[start + i];
      return res;
    }
    if (n <= 128) {
      const r = new Float64Array(8);
      for (let j = 0; j < 8; j++) r[j] = a[start + j];
      let i = 8;
      for (; i < n - (n % 8); i += 8) {
        for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
      }
      let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
      for (; i < n; i++) res += a[start + i];
      return res;
    }
    let n2 = Math.floor(n / 2);
    n2 -= n2 % 8;
    return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
  }

  /** Resampling taps from nIn to nOut samples: {first[], weights[][]} ("bilinear" or "nearest"). */
  function taps(nIn, nOut, method) {
    const first = new Array(nOut);
    const weights = new Array(nOut);
    const scale = nIn / nOut;
    if (method === "nearest") {
      for (let i = 0; i < nOut; i++) {
        first[i] = Math.min(Math.floor((i + 0.5) * scale), nIn - 1);
        weights[i] = [1.0];
      }
      return { first, weights };
    }
    const support = Math.max(scale, 1.0);
    const row = new Float64Array(nIn);
    for (let i = 0; i < nOut; i++) {
      const center = (i + 0.5) * scale;
      for (let j = 0; j < nIn; j++) row[j] = Math.max(0.0, 1.0 - Math.abs((j + 0.5 - center) / support));
      const total = pairwiseSum(row, 0, nIn);
      let lo = 0;
      while (lo < nIn && row[lo] === 0.0) lo++;
      if (total <= 0 || lo === nIn) { // cannot happen for valid sizes; mirrors the Python guard
        first[i] = Math.min(Math.floor(center), nIn - 1);
        weights[i] = [1.0];
        continue;
      }
      let hi = lo;
      while (hi < nIn && row[hi] !== 0.0) hi++;
      const w = new Array(hi - lo);
      for (let j = lo; j < hi; j++) w[j - lo] = row[j] / total;
      first[i] = lo;
      weights[i] = w;
    }
    return { first, weights };
  }

  /** {width, height, channels, data} uint8 image -> the same at (height, width). */
  function resize(img, height, width, method) {
    if (img.height === height && img.width === width) return img;
    const c = img.channels;
    const ty = taps(img.height, height, method);
    const tx = taps(img.width, width, method);
    const rowLen = img.width * c;
    const mid = new Float64Array(height * rowLen); // vertical pass, float64, not rounded
    for (let o = 0; o < height; o++) {
      const w = ty.weights[o];
      const base = o * rowLen;
      for (let t = 0; t < w.length; t++) {
        const src = (ty.first[o] + t) * rowLen;
        const wt = w[t];
        for (let k = 0; k < rowLen; k++) mid[base + k] += wt * img.data[src + k];
      }
    }
    const out = new Uint8Array(height * width * c); // horizontal pass, then round
    for (let y = 0; y < height; y++) {
      for (let p = 0; p < width; p++) {
        const w = tx.weights[p];
        for (let ch = 0; ch < c; ch++) {
          let acc = 0.0;
          for (let t = 0; t < w.length; t++) acc += w[t] * mid[(y * img.width + tx.first[p] + t) * c + ch];
          out[(y * width + p) * c + ch] = clip8(rint(acc));
        }
      }
    }
    return { width, height, channels: c, data: out };
  }

  /** Decoded RGBA (alpha already composited over black, as edgemri does) -> the manifest's colour. */
  function toColor(rgba, color) {
    const n = rgba.width * rgba.height;
    const channels = color === "gray" ? 1 : 3;
    const out = new Uint8Array(n * channels);
    const d = rgba.data;
    const step = rgba.channels;
    for (let i = 0; i < n; i++) {
      const at = i * step;
      if (color === "rgb") {
        out[3 * i] = d[at];
        out[3 * i + 1] = d[at + 1];
        out[3 * i + 2] = d[at + 2];
        continue;
      }
      const v = step < 3 ? d[at] : clip8(rint(d[at] * LUMA[0] + d[at + 1] * LUMA[1] + d[at + 2] * LUMA[2]));
      for (let c = 0; c < channels; c++) out[channels * i + c] = v;
    }
    return { width: rgba.width, height: rgba.height, channels, data: out };
  }

  /** prepare_pixels: colour mode, then resize to the manifest's input size. */
  function prepare(rgba, spec) {
    const method = spec.resize || "bilinear";
    if (spec.color !== "gray3") return resize(toColor(rgba, spec.color), spec.height, spec.width, method);
    // gray3's three channels are one luma plane: resize it once, replicate after (same bytes)
    const gray = resize(toColor(rgba, "gray"), spec.height, spec.width, method);
    const n = gray.width * gray.height;
    const out = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = gray.data[i];
    return { width: gray.width, height: gray.height, channels: 3, data: out };
  }

  /**
   * Prepared pixels -> the bytes MediaPipe must be given. MediaPipe copies a uint8 model's pixels
   * into its input tensor unchanged (it applies NormalizationOptions to float inputs only), so for
   * a uint8 input the page quantizes as edgemri does, q = clip(rint((p * scale + offset) / qscale)
   * + zero_point), in float64: the model then sees edgemri's input tensor byte for byte.
   */
  function modelPixels(img, spec) {
    const q = spec.quantization;
    if (spec.dtype !== "uint8" || !q) return img;
    const out = new Uint8Array(img.data.length);
    for (let i = 0; i < out.length; i++) {
      const real = img.data[i] * spec.scale + spec.offset;
      out[i] = clip8(rint(real / q.scale) + q.zero_point);
    }
    return { width: img.width, height: img.height, channels: img.channels, data: out };
  }

  /** Prepared pixels -> RGBA bytes (gray replicated, opaque): the image MediaPipe is given. */
  function toRgba(img) {
    const n = img.width * img.height;
    const out = new Uint8ClampedArray(n * 4);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) out[4 * i + c] = img.data[i * img.channels + (img.channels === 1 ? 0 : c)];
      out[4 * i + 3] = 255;
    }
    return out;
  }

  /** postprocess: scores (dequantized by MediaPipe) -> probabilities that sum to 1. */
  function postprocess(scores, kind) {
    if (kind === "logits") {
      const m = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - m));
      const z = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / z);
    }
    const total = scores.reduce((a, b) => a + b, 0);
    return total > 0 ? scores.map((s) => s / total) : scores.map(() => 1 / scores.length);
  }

  /** Class indices by descending probability, ties by index (numpy's stable argsort of -p). */
  function ranking(probs) {
    return probs.map((p, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
  }

  root.edgemriPreprocess = {
    rint, pairwiseSum, taps, resize, toColor, prepare, modelPixels, toRgba, postprocess, ranking,
  };
})(typeof globalThis !== "undefined" ? globalThis : this);
