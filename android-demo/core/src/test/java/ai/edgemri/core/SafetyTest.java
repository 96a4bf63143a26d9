package ai.edgemri.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

/** Calibration (temperature) and the out-of-distribution guard, as the Python runtime applies them. */
public class SafetyTest {
    /** A guard whose reference is "every block and bin of a uniform 128 image", sd 0.05. */
    private static String guarded(double temperature, double threshold) {
        StringBuilder mean = new StringBuilder();
        StringBuilder sd = new StringBuilder();
        for (int i = 0; i < 4 + 4; i++) {
            double m = i < 4 ? 128 / 255.0 : (i == 4 + 2 ? 1.0 : 0.0); // 4 bins: 128 falls in bin 2
            mean.append(i == 0 ? "" : ", ").append(m);
            sd.append(i == 0 ? "" : ", ").append(0.05);
        }
        String section = ", \"calibration\": {\"temperature\": " + temperature + ", \"fitted_on\": \"val\"},"
                + " \"ood\": {\"score\": \"msp\", \"threshold\": " + threshold + ", \"reference\": {\"version\": 1,"
                + " \"trained_on\": \"grayscale MRI\", \"grayscale\": true, \"colour_limit\": 4.0,"
                + " \"size\": {\"min_side\": 224, \"max_side\": 224, \"aspect_min\": 1.0, \"aspect_max\": 1.0,"
                + " \"aspect_tolerance\": 1.25, \"min_side_limit\": 112},"
                + " \"features\": {\"grid\": 2, \"bins\": 4, \"sd_floor\": 0.001, \"mean\": [" + mean + "], \"sd\": ["
                + sd + "]}, \"image_threshold\": 3.0}, \"metrics\": {}}}";
        return ManifestTest.INT8.replace("\"schema_version\": 1", "\"schema_version\": 2")
                .substring(0, ManifestTest.INT8.length() - 1) + section;
    }

    private static CanonicalImage uniform(int w, int h, int channels, int value) {
        int[] data = new int[w * h * channels];
        java.util.Arrays.fill(data, value);
        return new CanonicalImage(w, h, channels, data);
    }

    @Test
    public void temperatureMatchesSoftmaxOfLogitsOverT() {
        ModelManifest m = ModelManifest.parse(guarded(2.0, 0.5), "m.json");
        assertEquals(2.0, m.calibration.temperature, 0.0);
        double[] z = {1.0, -0.5, 0.25, 2.0};
        double total = 0;
        for (double v : z) {
            total += Math.exp(v);
        }
        float[] p = new float[4];
        double totalT = 0;
        for (double v : z) {
            totalT += Math.exp(v / 2.0);
        }
        float[] want = new float[4];
        for (int i = 0; i < 4; i++) {
            p[i] = (float) (Math.exp(z[i]) / total);
            want[i] = (float) (Math.exp(z[i] / 2.0) / totalT);
        }
        assertArrayEquals(want, m.calibration.apply(p, 1e-12), 1e-6f);
        float[] withZero = m.calibration.apply(new float[] {0f, 0.25f, 0.25f, 0.5f}, Calibration.floorFor(m.output));
        assertTrue(withZero[0] > 0f);
    }

    @Test
    public void noSectionsMeansIdentityAndGuardOff() {
        ModelManifest m = ModelManifest.parse(ManifestTest.INT8, "m.json");
        assertSame(Calibration.NONE, m.calibration);
        float[] p = {0.1f, 0.2f, 0.3f, 0.4f};
        assertSame(p, m.calibration.apply(p, 1e-12));
        OodGuard.Verdict v = m.ood.check(uniform(224, 224, 1, 128), uniform(4, 4, 3, 128), p);
        assertNull(v.inDistribution);
        assertEquals(OodGuard.GUARD_OFF, v.reason);
    }

    @Test
    public void guardSaysWhyAnImageIsRejected() {
        ModelManifest m = ModelManifest.parse(guarded(1.0, 0.5), "m.json");
        float[] sure = {0.9f, 0.05f, 0.03f, 0.02f};
        CanonicalImage scan = uniform(224, 224, 1, 128);
        CanonicalImage prepared = uniform(8, 8, 3, 128);
        assertTrue(m.ood.check(scan, prepared, sure).inDistribution);

        CanonicalImage photo = uniform(224, 224, 3, 0);
        for (int i = 0; i < photo.data.length; i += 3) {
            photo.data[i] = 200;
        }
        OodGuard.Verdict colour = m.ood.check(photo, prepared, sure);
        assertFalse(colour.inDistribution);
        assertEquals("colour image, model trained on grayscale MRI", colour.reason);

        assertTrue(m.ood.check(uniform(300, 100, 1, 128), prepared, sure).reason.startsWith("aspect ratio 3.00"));
        assertTrue(m.ood.check(scan, uniform(8, 8, 3, 250), sure).reason.startsWith("image statistics unlike"));
        OodGuard.Verdict unsure = m.ood.check(scan, prepared, new float[] {0.4f, 0.3f, 0.2f, 0.1f});
        assertTrue(unsure.reason.startsWith("score below the validation threshold"));
    }

    @Test
    public void featuresAreBlockMeansThenSqrtHistogram() {
        CanonicalImage img = new CanonicalImage(2, 2, 1, new int[] {0, 255, 64, 128});
        double[] f = OodGuard.features(img, 2, 4);
        assertArrayEquals(new double[] {0.0, 1.0, 64 / 255.0, 128 / 255.0, 0.5, 0.5, 0.5, 0.5}, f, 1e-12);
        assertThrows(ManifestException.class, () -> ModelManifest.parse(
                guarded(1.0, 0.5).replace("\"grid\": 2", "\"grid\": 3"), "m.json"));
    }

    @Test
    public void postprocessorAppliesTheManifestTemperature() {
        ModelManifest m = ModelManifest.parse(guarded(0.5, 0.5), "m.json");
        Postprocessor post = new Postprocessor(m);
        byte[] raw = {-128, -64, 0, 64};
        float[] own = post.uncalibrated(post.dequantize(raw));
        assertArrayEquals(m.calibration.apply(own, Calibration.floorFor(m.output)), post.probabilities(raw), 0f);
        assertTrue(post.probabilities(raw)[3] > own[3]); // T < 1 sharpens
    }
}
