package ai.edgemri.core;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The out-of-distribution guard of the manifest's {@code ood} section: the Java twin of
 * {@code runtime/guard.py}. An image is checked, first failure wins, for colour (a colour photo for
 * a model trained on grayscale images), size (aspect ratio outside the training range, or far
 * smaller), image statistics (8x8 block means and a 16-bin histogram of the prepared image as
 * z-scores against the training images; the largest |z| must stay under the validation
 * threshold) and score (the top calibrated probability must reach the validation threshold).
 * A safety net for the wrong kind of image, not a detector of unseen diseases.
 */
public final class OodGuard {
    /** No {@code ood} section: every verdict is "guard off". */
    public static final OodGuard OFF = new OodGuard();
    public static final String GUARD_OFF = "guard off: the manifest has no ood section";

    /** One image's verdict; {@code inDistribution} is null when the guard is off. */
    public static final class Verdict {
        public final Boolean inDistribution;
        public final String reason;

        Verdict(Boolean inDistribution, String reason) {
            this.inDistribution = inDistribution;
            this.reason = reason;
        }

        @Override
        public String toString() {
            return inDistribution == null ? reason : inDistribution ? "in distribution" : "NOT in distribution: " + reason;
        }
    }

    public final boolean enabled;
    public final String score;
    public final double threshold;
    private final boolean grayscale;
    private final double colourLimit;
    private final String trainedOn;
    private final Map<?, ?> size;
    private final int grid;
    private final int bins;
    private final double[] mean;
    private final double[] sd;
    private final double imageThreshold;

    private OodGuard() {
        enabled = false;
        score = "msp";
        threshold = 0;
        grayscale = false;
        colourLimit = 0;
        trainedOn = "";
        size = null;
        grid = 0;
        bins = 0;
        mean = new double[0];
        sd = new double[0];
        imageThreshold = Double.POSITIVE_INFINITY;
    }

    private OodGuard(Map<?, ?> section, Map<?, ?> ref) {
        enabled = true;
        score = String.valueOf(opt(section, "score", "msp"));
        threshold = num(opt(section, "threshold", 0.0));
        grayscale = Boolean.TRUE.equals(ref.get("grayscale"));
        colourLimit = num(opt(ref, "colour_limit", 4.0));
        trainedOn = String.valueOf(opt(ref, "trained_on", "grayscale images"));
        size = ref.get("size") instanceof Map && !((Map<?, ?>) ref.get("size")).isEmpty() ? (Map<?, ?>) ref.get("size") : null;
        Map<?, ?> feats = (Map<?, ?>) ref.get("features");
        grid = (int) num(feats.get("grid"));
        bins = (int) num(feats.get("bins"));
        double sdFloor = num(opt(feats, "sd_floor", 1e-3));
        mean = doubles((List<?>) feats.get("mean"), 0);
        sd = doubles((List<?>) feats.get("sd"), sdFloor);
        if (mean.length != grid * grid + bins || sd.length != mean.length) {
            throw new ManifestException("ood.reference.features has " + mean.length + " means for a " + grid
                    + "x" + grid + " grid and " + bins + " bins");
        }
        Object t = ref.get("image_threshold");
        imageThreshold = t == null ? Double.POSITIVE_INFINITY : num(t);
    }

    /** The {@code ood} value of a parsed manifest (null, or a reference version this app does not know: OFF). */
    public static OodGuard parse(Object section) {
        if (section == null) {
            return OFF;
        }
        if (!(section instanceof Map)) {
            throw new ManifestException("the ood section must be an object");
        }
        Map<?, ?> map = (Map<?, ?>) section;
        Object ref = map.get("reference");
        if (!(ref instanceof Map) || !Double.valueOf(1.0).equals(((Map<?, ?>) ref).get("version"))) {
            return OFF;
        }
        return new OodGuard(map, (Map<?, ?>) ref);
    }

    /** Mean |R,G,B - their mean| per pixel: 0 for grayscale, 10+ for a colour photo. */
    public static double colourfulness(CanonicalImage img) {
        if (img.channels < 3) {
            return 0.0;
        }
        double total = 0;
        int n = img.width * img.height;
        for (int i = 0; i < n; i++) {
            double r = img.data[3 * i];
            double g = img.data[3 * i + 1];
            double b = img.data[3 * i + 2];
            double m = (r + g + b) / 3.0;
            total += Math.abs(r - m) + Math.abs(g - m) + Math.abs(b - m);
        }
        return total / (3.0 * n);
    }

    /** Block means (/255, row-major) then sqrt histogram fractions, as {@code image_features}. */
    public static double[] features(CanonicalImage px, int grid, int bins) {
        int h = px.height;
        int w = px.width;
        int[] gray = new int[h * w];
        for (int i = 0; i < h * w; i++) {
            gray[i] = px.channels == 1 ? px.data[i] : Preprocessor.luma(px.data, 3 * i);
        }
        double[] out = new double[grid * grid + bins];
        for (int i = 0; i < grid; i++) {
            for (int j = 0; j < grid; j++) {
                int r0 = h * i / grid;
                int r1 = h * (i + 1) / grid;
                int c0 = w * j / grid;
                int c1 = w * (j + 1) / grid;
                double sum = 0;
                for (int y = r0; y < r1; y++) {
                    for (int x = c0; x < c1; x++) {
                        sum += gray[y * w + x];
                    }
                }
                out[i * grid + j] = sum / ((r1 - r0) * (double) (c1 - c0)) / 255.0;
            }
        }
        int[] counts = new int[bins];
        for (int v : gray) {
            counts[v * bins / 256]++;
        }
        for (int b = 0; b < bins; b++) {
            out[grid * grid + b] = Math.sqrt(counts[b] / (double) gray.length);
        }
        return out;
    }

    /** The verdict for one image: {@code raw} as decoded (null if unknown), {@code prepared} at the input size. */
    public Verdict check(CanonicalImage raw, CanonicalImage prepared, float[] probabilities) {
        if (!enabled) {
            return new Verdict(null, GUARD_OFF);
        }
        if (raw != null) {
            String why = rawReason(raw);
            if (why != null) {
                return new Verdict(false, why);
            }
        }
        double[] f = features(prepared, grid, bins);
        double z = 0;
        int at = 0;
        for (int i = 0; i < f.length; i++) {
            double zi = Math.abs((f[i] - mean[i]) / sd[i]);
            if (zi > z) {
                z = zi;
                at = i;
            }
        }
        if (z > imageThreshold) {
            return new Verdict(false, String.format(Locale.ROOT, "image statistics unlike the training images (%s z %.1f > %.1f)",
                    at < grid * grid ? "layout" : "histogram", z, imageThreshold));
        }
        float top = 0f;
        for (float p : probabilities) {
            top = Math.max(top, p);
        }
        if (top < threshold) {
            return new Verdict(false, String.format(Locale.ROOT, "score below the validation threshold (%s %.3f < %.3f)",
                    score, top, threshold));
        }
        return new Verdict(true, "in distribution");
    }

    private String rawReason(CanonicalImage raw) {
        if (grayscale && colourfulness(raw) > colourLimit) {
            return "colour image, model trained on " + trainedOn;
        }
        if (size == null) {
            return null;
        }
        double aspect = raw.width / (double) raw.height;
        double tol = num(opt(size, "aspect_tolerance", 1.25));
        double lo = num(size.get("aspect_min"));
        double hi = num(size.get("aspect_max"));
        if (!(lo / tol <= aspect && aspect <= hi * tol)) {
            return String.format(Locale.ROOT, "aspect ratio %.2f outside the training range %.2f-%.2f", aspect, lo, hi);
        }
        if (Math.min(raw.width, raw.height) < num(opt(size, "min_side_limit", 0.0))) {
            return "image " + raw.width + "x" + raw.height + " is much smaller than the training images (smallest side "
                    + (int) num(size.get("min_side")) + " px)";
        }
        return null;
    }

    private static double[] doubles(List<?> values, double floor) {
        double[] out = new double[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = Math.max(num(values.get(i)), floor);
        }
        return out;
    }

    private static double num(Object v) {
        if (!(v instanceof Double)) {
            throw new ManifestException("ood section: expected a number, got " + v);
        }
        return (Double) v;
    }

    private static Object opt(Map<?, ?> map, String key, Object fallback) {
        Object v = map.get(key);
        return v == null ? fallback : v;
    }
}
