package ai.edgemri.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.util.List;
import org.junit.Test;

public class PostprocessorTest {
    private static ModelManifest manifest(String kind) {
        return ModelManifest.parse(ManifestTest.INT8.replace("\"probabilities\"", "\"" + kind + "\""), "m.json");
    }

    @Test
    public void dequantizesAndRenormalises() {
        Postprocessor post = new Postprocessor(manifest("probabilities"));
        float[] real = post.dequantize(new byte[] {-128, 127, 0, -64});
        assertArrayEquals(new float[] {0f, 255 / 256f, 0.5f, 0.25f}, real, 0f);
        float[] p = post.probabilities(new byte[] {-128, -128, -128, -128}); // all zero -> uniform
        assertArrayEquals(new float[] {0.25f, 0.25f, 0.25f, 0.25f}, p, 0f);
        float[] q = post.probabilities(new byte[] {-128, 127, -1, -64});
        float sum = 0;
        for (float v : q) {
            sum += v;
        }
        assertEquals(1f, sum, 1e-6f);
    }

    @Test
    public void softmaxForLogitsAndStableTopK() {
        Postprocessor post = new Postprocessor(manifest("logits"));
        float[] p = post.probabilities(new float[] {2f, 2f, 0f, -1f});
        assertEquals(p[0], p[1], 0f);
        assertEquals(Math.exp(2) / (2 * Math.exp(2) + 1 + Math.exp(-1)), p[0], 1e-7);
        List<Prediction> top = post.topK(p, 3);
        assertEquals(3, top.size());
        assertEquals("glioma", top.get(0).label); // tie keeps manifest order
        assertEquals("meningioma", top.get(1).label);
        assertEquals("notumor", top.get(2).label);
    }
}
