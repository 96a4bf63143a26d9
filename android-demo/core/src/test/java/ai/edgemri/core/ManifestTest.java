package ai.edgemri.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

public class ManifestTest {
    static final String INT8 = "{\"schema\": \"edgemri.manifest\", \"schema_version\": 1, \"task\": \"brain4\","
            + " \"classes\": [\"glioma\", \"meningioma\", \"notumor\", \"pituitary\"],"
            + " \"input\": {\"height\": 224, \"width\": 224, \"channels\": 3, \"color\": \"gray3\","
            + " \"resize\": \"bilinear\", \"scale\": 0.00784313725490196, \"offset\": -1.0, \"layout\": \"NHWC\","
            + " \"dtype\": \"int8\", \"quantization\": {\"scale\": 0.007843137718737125, \"zero_point\": -1}},"
            + " \"output\": {\"kind\": \"probabilities\", \"dtype\": \"int8\","
            + " \"quantization\": {\"scale\": 0.00390625, \"zero_point\": -128}},"
            + " \"arch\": \"mobilenetv2\", \"format\": \"tflite\", \"provenance\": {}, \"extra\": {}}";

    @Test
    public void parsesEveryField() {
        ModelManifest m = ModelManifest.parse(INT8, "manifest.json");
        assertEquals(4, m.numClasses());
        assertEquals("pituitary", m.classes.get(3));
        assertEquals(224, m.input.height);
        assertEquals("int8", m.input.dtype);
        assertEquals(-1, m.input.quantization.zeroPoint);
        assertEquals(-128, m.output.quantization.zeroPoint);
        assertEquals(1.0 / 127.5, m.input.scale, 0.0);
    }

    @Test
    public void rejectsForeignOrNewerOrInconsistentManifests() {
        String[] bad = {
            "[]",
            INT8.replace("edgemri.manifest", "other"),
            INT8.replace("\"schema_version\": 1", "\"schema_version\": 3"),
            INT8.replace("\"schema_version\": 1", "\"schema_version\": 0"),
            INT8.replace(", \"quantization\": {\"scale\": 0.007843137718737125, \"zero_point\": -1}", ""),
            INT8.replace("\"channels\": 3", "\"channels\": 1"),
            INT8.replace("\"height\": 224", "\"height\": \"big\""),
            INT8.replace("\"glioma\", ", "\"notumor\", "),
            "{not json",
        };
        for (String text : bad) {
            ManifestException ex = assertThrows(ManifestException.class, () -> ModelManifest.parse(text, "m.json"));
            assertTrue(ex.getMessage(), ex.getMessage().startsWith("m.json"));
        }
    }

    @Test
    public void checkModelIoCatchesMismatchedModel() {
        ModelManifest m = ModelManifest.parse(INT8, "manifest.json");
        m.checkModelIo(new int[] {1, 224, 224, 3}, new int[] {1, 4}, "model.tflite");
        ManifestException size = assertThrows(ManifestException.class,
                () -> m.checkModelIo(new int[] {1, 96, 96, 3}, new int[] {1, 4}, "model.tflite"));
        assertTrue(size.getMessage().contains("does not match"));
        ManifestException classes = assertThrows(ManifestException.class,
                () -> m.checkModelIo(new int[] {1, 224, 224, 3}, new int[] {1, 3}, "model.tflite"));
        assertTrue(classes.getMessage().contains("3 outputs"));
    }
}
