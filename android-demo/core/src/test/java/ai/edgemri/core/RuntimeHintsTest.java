package ai.edgemri.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

public class RuntimeHintsTest {
    static final String V2 = ManifestTest.INT8.replace("\"schema_version\": 1", "\"schema_version\": 2");

    static String withRuntime(String section) {
        return V2.replace("\"extra\": {}}", "\"extra\": {}, \"runtime\": " + section + "}");
    }

    @Test
    public void parsesTheTunedSection() {
        ModelManifest m = ModelManifest.parse(withRuntime("{\"backend\": \"litert\", \"threads\": 2,"
                + " \"options\": {\"xnnpack\": false}, \"measured\": {\"cpu\": \"Cortex-A76\", \"p50_ms\": 2.1}}"),
                "manifest.json");
        assertEquals("litert", m.hints.backend);
        assertEquals(2, m.hints.threads);
        assertEquals(2, m.hints.threadsOr(4));
        assertFalse(m.hints.xnnpackOr(true));
        assertTrue(m.hints.appliesTo("litert"));
        assertFalse(m.hints.appliesTo("onnxruntime"));
        assertFalse(m.hints.isEmpty());
    }

    @Test
    public void versionOneAndEmptySectionsHaveNoHints() {
        ModelManifest v1 = ModelManifest.parse(ManifestTest.INT8, "manifest.json");
        assertSame(RuntimeHints.NONE, v1.hints);
        assertEquals(4, v1.hints.threadsOr(4));
        assertTrue(v1.hints.xnnpackOr(true));
        assertSame(RuntimeHints.NONE, ModelManifest.parse(withRuntime("null"), "m.json").hints);
        RuntimeHints empty = ModelManifest.parse(withRuntime("{}"), "m.json").hints;
        assertTrue(empty.isEmpty() && empty.appliesTo("litert"));
    }

    @Test
    public void badValuesAreIgnoredNotFatal() {
        RuntimeHints h = ModelManifest.parse(withRuntime("{\"threads\": 1.5, \"options\": {\"xnnpack\": \"no\"}}"),
                "m.json").hints;
        assertEquals(3, h.threadsOr(3));
        assertTrue(h.xnnpackOr(true));
        assertEquals(0, ModelManifest.parse(withRuntime("{\"threads\": -2}"), "m.json").hints.threads);
    }

    @Test
    public void aNonObjectSectionIsAManifestError() {
        ManifestException ex = assertThrows(ManifestException.class,
                () -> ModelManifest.parse(withRuntime("[1]"), "m.json"));
        assertTrue(ex.getMessage(), ex.getMessage().startsWith("m.json") && ex.getMessage().contains("runtime"));
    }
}
