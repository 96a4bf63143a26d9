package ai.edgemri.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;

/**
 * The edgemri model manifest (schema "edgemri.manifest", version 1): the Java twin of
 * {@code runtime/manifest.py}. It carries everything the app needs to feed the model and read its
 * output, so nothing about a model (labels, size, normalization, quantization) is hard-coded.
 */
public final class ModelManifest {
    public static final String SCHEMA = "edgemri.manifest";
    public static final int SCHEMA_VERSION = 2;
    /** Oldest version still read: version 1 lacks the optional runtime / calibration / ood sections. */
    public static final int MIN_SCHEMA_VERSION = 1;

    /** Affine quantization: real = scale * (q - zeroPoint). */
    public static final class Quantization {
        public final double scale;
        public final int zeroPoint;

        public Quantization(double scale, int zeroPoint) {
            this.scale = scale;
            this.zeroPoint = zeroPoint;
        }
    }

    /** How pixels become the input tensor (see runtime/preprocess.py). */
    public static final class InputSpec {
        public final int height;
        public final int width;
        public final int channels;
        public final String color;
        public final String resize;
        public final double scale;
        public final double offset;
        public final String layout;
        public final String dtype;
        public final Quantization quantization;

        public InputSpec(int height, int width, int channels, String color, String resize, double scale,
                         double offset, String layout, String dtype, Quantization quantization) {
            this.height = height;
            this.width = width;
            this.channels = channels;
            this.color = color;
            this.resize = resize;
            this.scale = scale;
            this.offset = offset;
            this.layout = layout;
            this.dtype = dtype;
            this.quantization = quantization;
        }

        /** Shape of a batch of one in this input's layout. */
        public int[] shape() {
            return "NCHW".equals(layout) ? new int[] {1, channels, height, width}
                                         : new int[] {1, height, width, channels};
        }
    }

    /** What the model's output means and how to dequantize it. */
    public static final class OutputSpec {
        public final String kind;
        public final String dtype;
        public final Quantization quantization;

        public OutputSpec(String kind, String dtype, Quantization quantization) {
            this.kind = kind;
            this.dtype = dtype;
            this.quantization = quantization;
        }
    }

    public final String task;
    public final List<String> classes;
    public final InputSpec input;
    public final OutputSpec output;
    public final String arch;
    public final String format;
    /** The optional runtime section (edgemri tune's threads / XNNPACK); {@link RuntimeHints#NONE} in v1. */
    public final RuntimeHints hints;
    /** The optional calibration section (temperature); {@link Calibration#NONE} without one. */
    public final Calibration calibration;
    /** The optional ood section (out-of-distribution guard); {@link OodGuard#OFF} without one. */
    public final OodGuard ood;

    private ModelManifest(String task, List<String> classes, InputSpec input, OutputSpec output, String arch,
                          String format, RuntimeHints hints, Calibration calibration, OodGuard ood) {
        this.task = task;
        this.classes = Collections.unmodifiableList(classes);
        this.input = input;
        this.output = output;
        this.arch = arch;
        this.format = format;
        this.hints = hints;
        this.calibration = calibration;
        this.ood = ood;
        validate();
    }

    /** Parse and validate manifest JSON; {@code source} names the file in error messages. */
    public static ModelManifest parse(String json, String source) {
        Object root;
        try {
            root = Json.parse(json);
        } catch (IllegalArgumentException ex) {
            throw new ManifestException(source + " is not valid JSON: " + ex.getMessage());
        }
        if (!(root instanceof Map) || !SCHEMA.equals(((Map<?, ?>) root).get("schema"))) {
            throw new ManifestException(source + " is not an edgemri manifest (no \"schema\": \"" + SCHEMA + "\")");
        }
        Map<?, ?> data = (Map<?, ?>) root;
        Object version = data.get("schema_version");
        if (!(version instanceof Double) || ((Double) version).intValue() < MIN_SCHEMA_VERSION
                || ((Double) version).intValue() > SCHEMA_VERSION) {
            throw new ManifestException(source + " has manifest schema_version " + version + "; this app reads "
                    + MIN_SCHEMA_VERSION + " to " + SCHEMA_VERSION + ". Update the app or re-export the model");
        }
        try {
            Map<?, ?> in = (Map<?, ?>) require(data, "input");
            Map<?, ?> out = data.get("output") == null ? Collections.emptyMap() : (Map<?, ?>) data.get("output");
            List<String> classes = new ArrayList<>();
            for (Object c : (List<?>) require(data, "classes")) {
                classes.add(String.valueOf(c));
            }
            InputSpec input = new InputSpec(
                    intOf(require(in, "height")), intOf(require(in, "width")), intOf(opt(in, "channels", 3.0)),
                    (String) opt(in, "color", "gray3"), (String) opt(in, "resize", "bilinear"),
                    (Double) opt(in, "scale", 1.0 / 127.5), (Double) opt(in, "offset", -1.0),
                    (String) opt(in, "layout", "NHWC"), (String) opt(in, "dtype", "float32"),
                    quant(in.get("quantization")));
            OutputSpec output = new OutputSpec((String) opt(out, "kind", "probabilities"),
                    (String) opt(out, "dtype", "float32"), quant(out.get("quantization")));
            return new ModelManifest(String.valueOf(require(data, "task")), classes, input, output,
                    String.valueOf(opt(data, "arch", "")), String.valueOf(opt(data, "format", "keras")),
                    RuntimeHints.parse(data.get("runtime")), Calibration.parse(data.get("calibration")),
                    OodGuard.parse(data.get("ood")));
        } catch (ManifestException ex) {
            throw new ManifestException(source + ": " + ex.getMessage());
        } catch (ClassCastException | NullPointerException ex) {
            throw new ManifestException(source + " is malformed: a field has the wrong type");
        }
    }

    public int numClasses() {
        return classes.size();
    }

    /**
     * Refuse a model whose tensors disagree with this manifest (wrong size, channels or class
     * count): the usual sign of a model.tflite and manifest.json from different exports.
     */
    public void checkModelIo(int[] inputShape, int[] outputShape, String source) {
        int[] want = input.shape();
        boolean ok = inputShape.length == 4;
        for (int i = 1; ok && i < 4; i++) {
            ok = inputShape[i] == want[i] || inputShape[i] == -1;
        }
        if (!ok) {
            throw new ManifestException(source + ": model input shape " + Arrays.toString(inputShape)
                    + " does not match the manifest (" + input.layout + " " + Arrays.toString(want)
                    + "). Bundle the manifest exported with this model (edgemri bundle)");
        }
        int nOut = outputShape.length == 0 ? 0 : outputShape[outputShape.length - 1];
        if (nOut != numClasses()) {
            throw new ManifestException(source + ": model has " + nOut + " outputs but the manifest lists "
                    + numClasses() + " classes " + classes + ". Bundle the manifest exported with this model");
        }
    }

    private void validate() {
        check(classes.size() >= 2, "a manifest needs at least two classes");
        check(new HashSet<>(classes).size() == classes.size(), "class names must be unique");
        check(Arrays.asList("gray3", "rgb", "gray").contains(input.color), "input.color must be gray3, rgb or gray");
        check(Arrays.asList("bilinear", "nearest").contains(input.resize), "input.resize must be bilinear or nearest");
        check(Arrays.asList("NHWC", "NCHW").contains(input.layout), "input.layout must be NHWC or NCHW");
        check(Arrays.asList("float32", "int8", "uint8").contains(input.dtype), "input.dtype must be float32, int8 or uint8");
        check(Arrays.asList("float32", "int8", "uint8").contains(output.dtype), "output.dtype must be float32, int8 or uint8");
        check(Arrays.asList("probabilities", "logits").contains(output.kind), "output.kind must be probabilities or logits");
        check(input.channels == ("gray".equals(input.color) ? 1 : 3), "input.color " + input.color
                + " needs " + ("gray".equals(input.color) ? 1 : 3) + " channel(s), not " + input.channels);
        check(input.height >= 8 && input.width >= 8, "input size must be at least 8x8");
        check(!"float32".equals(input.dtype) ? input.quantization != null : true,
                "input is " + input.dtype + " but the manifest has no input.quantization");
        check(!"float32".equals(output.dtype) ? output.quantization != null : true,
                "output is " + output.dtype + " but the manifest has no output.quantization");
        if (input.quantization != null) {
            check(input.quantization.scale > 0, "input.quantization.scale must be positive");
        }
    }

    private static Quantization quant(Object value) {
        if (value == null) {
            return null;
        }
        Map<?, ?> q = (Map<?, ?>) value;
        return new Quantization((Double) require(q, "scale"), intOf(require(q, "zero_point")));
    }

    private static Object require(Map<?, ?> map, String key) {
        Object v = map.get(key);
        if (v == null) {
            throw new ManifestException("missing field \"" + key + "\"");
        }
        return v;
    }

    private static Object opt(Map<?, ?> map, String key, Object fallback) {
        Object v = map.get(key);
        return v == null ? fallback : v;
    }

    private static int intOf(Object v) {
        double d = (Double) v;
        if (d != Math.rint(d)) {
            throw new ManifestException("expected an integer, got " + d);
        }
        return (int) d;
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new ManifestException(message);
        }
    }
}
