package ai.edgemri.core;

import java.util.ArrayList;
import java.util.List;

/**
 * Raw model output to ranked, labelled probabilities: the Java port of {@code postprocess} in
 * runtime/preprocess.py (dequantize in double then float32; softmax for logits; renormalize
 * probabilities, or uniform if they sum to zero), then the manifest's temperature ({@link
 * Calibration}; identity without one).
 */
public final class Postprocessor {
    private final ModelManifest manifest;

    public Postprocessor(ModelManifest manifest) {
        this.manifest = manifest;
    }

    /** int8/uint8 raw output bytes (one image) to real values. */
    public float[] dequantize(byte[] raw) {
        ModelManifest.OutputSpec out = manifest.output;
        float[] real = new float[raw.length];
        boolean unsigned = "uint8".equals(out.dtype);
        ModelManifest.Quantization q = out.quantization;
        for (int i = 0; i < raw.length; i++) {
            int v = unsigned ? raw[i] & 0xff : raw[i];
            real[i] = q == null ? v : (float) ((v - (double) q.zeroPoint) * q.scale);
        }
        return real;
    }

    /** Probabilities from an int8/uint8 output. */
    public float[] probabilities(byte[] raw) {
        return probabilities(dequantize(raw));
    }

    /** Probabilities from real (float32 or dequantized) output values. */
    public float[] probabilities(float[] real) {
        if (real.length != manifest.numClasses()) {
            throw new ManifestException("model produced " + real.length + " values but the manifest lists "
                    + manifest.numClasses() + " classes");
        }
        return manifest.calibration.apply(uncalibrated(real), Calibration.floorFor(manifest.output));
    }

    /** The model's own probabilities (softmax of logits, or renormalized), before the temperature. */
    public float[] uncalibrated(float[] real) {
        if ("logits".equals(manifest.output.kind)) {
            return softmax(real);
        }
        float total = pairwiseSum(real);
        float[] p = new float[real.length];
        for (int i = 0; i < real.length; i++) {
            p[i] = total > 0 ? real[i] / total : 1.0f / real.length;
        }
        return p;
    }

    /** float32 softmax, max-subtracted, as NumPy computes it. */
    public static float[] softmax(float[] x) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : x) {
            max = Math.max(max, v);
        }
        float[] e = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            e[i] = (float) Math.exp(x[i] - max);
        }
        float total = pairwiseSum(e);
        for (int i = 0; i < x.length; i++) {
            e[i] = e[i] / total;
        }
        return e;
    }

    /** NumPy's float32 pairwise sum (sequential below 8 values, 8 accumulators, halves above 128). */
    static float pairwiseSum(float[] a) {
        return pairwiseSum(a, 0, a.length);
    }

    private static float pairwiseSum(float[] a, int start, int n) {
        if (n < 8) {
            float res = 0f;
            for (int i = 0; i < n; i++) {
                res += a[start + i];
            }
            return res;
        }
        if (n > 128) {
            int n2 = n / 2;
            n2 -= n2 % 8;
            return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
        }
        float[] r = new float[8];
        System.arraycopy(a, start, r, 0, 8);
        int i = 8;
        for (; i < n - (n % 8); i += 8) {
            for (int j = 0; j < 8; j++) {
                r[j] += a[start + i + j];
            }
        }
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) {
            res += a[start + i];
        }
        return res;
    }

    /** The k most probable classes, most probable first; ties keep the manifest's order. */
    public List<Prediction> topK(float[] probs, int k) {
        List<Prediction> all = new ArrayList<>();
        for (int i = 0; i < probs.length; i++) {
            all.add(new Prediction(i, manifest.classes.get(i), probs[i]));
        }
        all.sort((a, b) -> Float.compare(b.probability, a.probability)); // stable: ties keep index order
        return all.subList(0, Math.min(k, all.size()));
    }
}
