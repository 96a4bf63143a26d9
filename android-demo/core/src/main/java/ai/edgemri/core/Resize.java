package ai.edgemri.core;

/**
 * The separable resize of runtime/preprocess.py, reproduced operation for operation.
 *
 * <p>Each output pixel is a weighted sum of a contiguous run of input pixels ("taps"). The
 * weights are computed in double exactly as {@code resize_weights} does, including NumPy's
 * pairwise summation for the normalizing total, and sums run in ascending tap order with a
 * separate multiply and add (Java never fuses them), which is what the Python side does too.
 * That is what makes int8 inputs match the Python runtime bit for bit.
 */
public final class Resize {
    private Resize() {
    }

    /** The taps of every output position along one axis. */
    public static final class Taps {
        public final int[] first;
        public final double[][] weights;

        Taps(int[] first, double[][] weights) {
            this.first = first;
            this.weights = weights;
        }
    }

    /** Resampling taps from nIn to nOut samples ("bilinear": antialiased triangle; "nearest"). */
    public static Taps taps(int nIn, int nOut, String method) {
        int[] first = new int[nOut];
        double[][] weights = new double[nOut][];
        double scale = (double) nIn / nOut;
        if ("nearest".equals(method)) {
            for (int i = 0; i < nOut; i++) {
                first[i] = Math.min((int) Math.floor((i + 0.5) * scale), nIn - 1);
                weights[i] = new double[] {1.0};
            }
            return new Taps(first, weights);
        }
        double support = Math.max(scale, 1.0);
        double[] row = new double[nIn];
        for (int i = 0; i < nOut; i++) {
            double center = (i + 0.5) * scale;
            for (int j = 0; j < nIn; j++) {
                row[j] = Math.max(0.0, 1.0 - Math.abs(((j + 0.5) - center) / support));
            }
            double total = pairwiseSum(row, 0, nIn);
            int lo = 0;
            while (lo < nIn && row[lo] == 0.0) {
                lo++;
            }
            if (total <= 0 || lo == nIn) { // cannot happen for valid sizes; mirrors the Python guard
                first[i] = Math.min((int) center, nIn - 1);
                weights[i] = new double[] {1.0};
                continue;
            }
            int hi = lo;
            while (hi < nIn && row[hi] != 0.0) {
                hi++;
            }
            double[] w = new double[hi - lo];
            for (int j = lo; j < hi; j++) {
                w[j - lo] = row[j] / total;
            }
            first[i] = lo;
            weights[i] = w;
        }
        return new Taps(first, weights);
    }

    /** NumPy's pairwise summation of float64 ({@code np.sum} on a contiguous array). */
    static double pairwiseSum(double[] a, int start, int n) {
        if (n < 8) {
            double res = 0.0;
            for (int i = 0; i < n; i++) {
                res += a[start + i];
            }
            return res;
        }
        if (n <= 128) {
            double[] r = new double[8];
            for (int j = 0; j < 8; j++) {
                r[j] = a[start + j];
            }
            int i = 8;
            for (; i < n - (n % 8); i += 8) {
                for (int j = 0; j < 8; j++) {
                    r[j] += a[start + i + j];
                }
            }
            double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for (; i < n; i++) {
                res += a[start + i];
            }
            return res;
        }
        int n2 = n / 2;
        n2 -= n2 % 8;
        return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
    }

    /** Resize an 8-bit image to (height, width); the result is rounded half-to-even and clipped. */
    public static CanonicalImage resize(CanonicalImage img, int height, int width, String method) {
        if (img.height == height && img.width == width) {
            return img;
        }
        int c = img.channels;
        Taps ty = taps(img.height, height, method);
        Taps tx = taps(img.width, width, method);
        // vertical pass: (height, img.width, c) doubles
        double[] mid = new double[height * img.width * c];
        int rowLen = img.width * c;
        for (int o = 0; o < height; o++) {
            double[] w = ty.weights[o];
            int base = o * rowLen;
            for (int t = 0; t < w.length; t++) {
                int src = (ty.first[o] + t) * rowLen;
                double wt = w[t];
                for (int k = 0; k < rowLen; k++) {
                    mid[base + k] += wt * img.data[src + k];
                }
            }
        }
        // horizontal pass, then round
        int[] out = new int[height * width * c];
        for (int y = 0; y < height; y++) {
            for (int p = 0; p < width; p++) {
                double[] w = tx.weights[p];
                for (int ch = 0; ch < c; ch++) {
                    double acc = 0.0;
                    for (int t = 0; t < w.length; t++) {
                        acc += w[t] * mid[(y * img.width + tx.first[p] + t) * c + ch];
                    }
                    out[(y * width + p) * c + ch] = clip8(Math.rint(acc));
                }
            }
        }
        return new CanonicalImage(width, height, c, out);
    }

    static int clip8(double v) {
        return v < 0 ? 0 : (v > 255 ? 255 : (int) v);
    }
}
