package ai.edgemri.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class PreprocessorTest {
    static ModelManifest.InputSpec spec(int h, int w, String color, String layout, String dtype) {
        ModelManifest.Quantization q = "float32".equals(dtype) ? null
                : new ModelManifest.Quantization(1.0 / 127.5, "int8".equals(dtype) ? 0 : 128);
        return new ModelManifest.InputSpec(h, w, "gray".equals(color) ? 1 : 3, color, "bilinear", 1.0 / 127.5, -1.0,
                layout, dtype, q);
    }

    @Test
    public void lumaOfAGrayPixelIsTheGrayValue() {
        // so a gray PNG decoded to ARGB (Android) equals the same PNG decoded as gray (Python)
        for (int v = 0; v < 256; v++) {
            assertEquals(v, Preprocessor.luma(new int[] {v, v, v}, 0));
        }
        assertEquals(76, Preprocessor.luma(new int[] {255, 0, 0}, 0)); // rint(76.245)
    }

    @Test
    public void alphaIsCompositedOntoBlackHalfToEven() {
        // 0x80 alpha: 255 * 128/255 = 128; 1 * 128/255 = 0.502 -> 1; 3 * 85/255 = 1.0 -> 1
        CanonicalImage img = CanonicalImage.fromArgb(new int[] {0x80ff0001, 0x55030303}, 2, 1);
        assertArrayEquals(new int[] {128, 0, 1, 1, 1, 1}, img.data);
    }

    @Test
    public void sameSizeIsIdentityAndNearestPicksCentres() {
        int[] px = new int[16];
        for (int i = 0; i < 16; i++) {
            px[i] = i;
        }
        CanonicalImage img = CanonicalImage.ofGray(px, 4, 4);
        assertEquals(img, Resize.resize(img, 4, 4, "bilinear"));
        assertArrayEquals(new int[] {5, 7, 13, 15}, Resize.resize(img, 2, 2, "nearest").data);
        // halving with the widened triangle: taps 3/7, 3/7, 1/7 at the border in each direction
        CanonicalImage half = Resize.resize(img, 2, 2, "bilinear");
        assertEquals(4, half.data[0]); // rint(4 * 5/7 + 5/7) = rint(3.57)
    }

    @Test
    public void tapsAreNormalisedAndContiguous() {
        for (int nIn = 1; nIn < 300; nIn += 7) {
            for (int nOut = 1; nOut < 120; nOut += 5) {
                Resize.Taps t = Resize.taps(nIn, nOut, "bilinear");
                for (int o = 0; o < nOut; o++) {
                    double sum = 0;
                    for (double w : t.weights[o]) {
                        sum += w;
                    }
                    assertEquals(1.0, sum, 1e-12);
                    assertEquals(true, t.first[o] + t.weights[o].length <= nIn);
                }
            }
        }
    }

    @Test
    public void nchwAndQuantizationClip() {
        int[] px = {0, 255, 128, 1, 2, 3}; // 1x2 RGB
        Preprocessor nhwc = new Preprocessor(spec(8, 8, "rgb", "NHWC", "int8"));
        Preprocessor nchw = new Preprocessor(spec(8, 8, "rgb", "NCHW", "int8"));
        CanonicalImage img = new CanonicalImage(2, 1, 3, px);
        CanonicalImage big = nhwc.prepare(img);
        byte[] a = nhwc.toModelInput(big).bytes;
        byte[] b = nchw.toModelInput(big).bytes;
        int plane = 64;
        for (int i = 0; i < 64; i++) {
            for (int c = 0; c < 3; c++) {
                assertEquals(a[i * 3 + c], b[c * plane + i]);
            }
        }
        // q = rint(p - 127.5) with zero point 0: 0 -> -128, 255 -> 127 (rint(127.5) = 128 -> clipped)
        Preprocessor exact = new Preprocessor(spec(1 << 3, 1 << 3, "gray", "NHWC", "int8"));
        int[] ends = new int[64];
        ends[1] = 255;
        ends[2] = 128;
        byte[] q = exact.toModelInput(CanonicalImage.ofGray(ends, 8, 8)).bytes;
        assertEquals(-128, q[0]);
        assertEquals(127, q[1]);
        assertEquals(0, q[2]); // rint(0.5) = 0, half to even
        float[] f = new Preprocessor(spec(8, 8, "gray", "NHWC", "float32"))
                .toModelInput(CanonicalImage.ofGray(ends, 8, 8)).floats;
        assertEquals(-1.0f, f[0], 0f);
        assertEquals(1.0f, f[1], 0f);
    }
}
