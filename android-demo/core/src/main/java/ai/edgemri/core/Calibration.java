package ai.edgemri.core;

import java.util.Map;

/**
 * The manifest's optional {@code calibration} section: temperature scaling of the model's
 * probabilities, the Java twin of {@code runtime/calibration.py}.
 *
 * <p>The exported graphs end in softmax, so the temperature is applied to probabilities:
 * {@code softmax(log p / T)}, which equals {@code softmax(z / T)} for the logits behind {@code p}. A
 * probability of exactly 0 (int8 outputs round anything under half a step to 0) becomes a quarter
 * of the output quantization step before the log. {@code T == 1} (or no section) returns the
 * probabilities unchanged, so the parity fixtures of uncalibrated models stay bit-exact.
 */
public final class Calibration {
    /** No calibration: probabilities are used as the model computes them. */
    public static final Calibration NONE = new Calibration(1.0, "");
    static final double FLOAT_FLOOR = 1e-12;
    static final double ZERO_STEP_FRACTION = 0.25;

    public final double temperature;
    public final String fittedOn;

    Calibration(double temperature, String fittedOn) {
        this.temperature = temperature;
        this.fittedOn = fittedOn;
    }

    /** The {@code calibration} value of a parsed manifest (null: {@link #NONE}). */
    public static Calibration parse(Object section) {
        if (section == null) {
            return NONE;
        }
        if (!(section instanceof Map)) {
            throw new ManifestException("the calibration section must be an object");
        }
        Map<?, ?> map = (Map<?, ?>) section;
        Object t = map.get("temperature");
        double temperature = t instanceof Double ? (Double) t : 1.0;
        if (!(temperature > 0) || Double.isInfinite(temperature)) {
            throw new ManifestException("calibration.temperature must be a positive number, not " + t);
        }
        Object fitted = map.get("fitted_on");
        return new Calibration(temperature, fitted == null ? "" : String.valueOf(fitted));
    }

    /** What a probability of 0 stands for, given how the output was quantized. */
    public static double floorFor(ModelManifest.OutputSpec output) {
        if (!"float32".equals(output.dtype) && output.quantization != null) {
            return output.quantization.scale * ZERO_STEP_FRACTION;
        }
        return FLOAT_FLOOR;
    }

    /** Temperature-scaled probabilities (double arithmetic, float32 result); identity at T = 1. */
    public float[] apply(float[] probs, double floor) {
        if (temperature == 1.0) {
            return probs;
        }
        double[] z = new double[probs.length];
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < probs.length; i++) {
            z[i] = Math.log(Math.max(probs[i], floor)) / temperature;
            max = Math.max(max, z[i]);
        }
        double total = 0;
        for (int i = 0; i < z.length; i++) {
            z[i] = Math.exp(z[i] - max);
            total += z[i];
        }
        float[] out = new float[probs.length];
        for (int i = 0; i < z.length; i++) {
            out[i] = (float) (z[i] / total);
        }
        return out;
    }
}
