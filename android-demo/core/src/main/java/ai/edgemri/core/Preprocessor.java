package ai.edgemri.core;

/**
 * Canonical pixels to the model's input tensor: the Java port of runtime/preprocess.py.
 *
 * <p>Steps (same order, same arithmetic): colour mode, separable resize, normalize
 * {@code p * scale + offset} in double, then either a cast to float32 or int8/uint8 quantization
 * {@code clip(rint(real / qscale) + zero_point)}, then NHWC or NCHW layout.
 */
public final class Preprocessor {
    static final double[] LUMA = {0.299, 0.587, 0.114};
    private final ModelManifest.InputSpec spec;

    public Preprocessor(ModelManifest.InputSpec spec) {
        this.spec = spec;
    }

    /** Decoded image to model input in one call. */
    public ModelInput process(CanonicalImage image) {
        return toModelInput(prepare(image));
    }

    /** Colour mode then resize: the uint8 pixels that training caches ({@code prepare_pixels}). */
    public CanonicalImage prepare(CanonicalImage image) {
        return Resize.resize(toColor(image, spec.color), spec.height, spec.width, spec.resize);
    }

    /** gray: luma, 1 channel; gray3: luma replicated to 3; rgb: colour kept (gray replicated). */
    public static CanonicalImage toColor(CanonicalImage img, String color) {
        int n = img.width * img.height;
        int outChannels = "gray".equals(color) ? 1 : 3;
        int[] out = new int[n * outChannels];
        for (int i = 0; i < n; i++) {
            if ("rgb".equals(color) && img.channels == 3) {
                System.arraycopy(img.data, 3 * i, out, 3 * i, 3);
                continue;
            }
            int v = img.channels == 1 ? img.data[i] : luma(img.data, 3 * i);
            for (int c = 0; c < outChannels; c++) {
                out[outChannels * i + c] = v;
            }
        }
        return new CanonicalImage(img.width, img.height, outChannels, out);
    }

    static int luma(int[] rgb, int at) {
        double y = rgb[at] * LUMA[0] + rgb[at + 1] * LUMA[1] + rgb[at + 2] * LUMA[2];
        return Resize.clip8(Math.rint(y));
    }

    /** Prepared pixels (already at the input size and channel count) to the input tensor. */
    public ModelInput toModelInput(CanonicalImage px) {
        if (px.height != spec.height || px.width != spec.width || px.channels != spec.channels) {
            throw new IllegalArgumentException("prepared pixels are " + px.height + "x" + px.width + "x"
                    + px.channels + ", the model takes " + spec.height + "x" + spec.width + "x" + spec.channels);
        }
        int n = px.data.length;
        boolean nchw = "NCHW".equals(spec.layout);
        boolean isFloat = "float32".equals(spec.dtype);
        float[] floats = isFloat ? new float[n] : null;
        byte[] bytes = isFloat ? null : new byte[n];
        int lo = "int8".equals(spec.dtype) ? -128 : 0;
        int hi = "int8".equals(spec.dtype) ? 127 : 255;
        int plane = spec.height * spec.width;
        for (int i = 0; i < n; i++) {
            int dst = nchw ? (i % spec.channels) * plane + i / spec.channels : i;
            double real = px.data[i] * spec.scale + spec.offset;
            if (isFloat) {
                floats[dst] = (float) real;
            } else {
                double q = Math.rint(real / spec.quantization.scale) + spec.quantization.zeroPoint;
                bytes[dst] = (byte) (int) Math.max(lo, Math.min(hi, q));
            }
        }
        return new ModelInput(spec.dtype, spec.shape(), bytes, floats);
    }
}
