package ai.edgemri.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.Assume;
import org.junit.Test;

/**
 * Replays fixtures written by {@code edgemri bundle} (or the Python tests): each PNG through the
 * Java preprocessing must give the Python input tensor (int8/uint8: byte for byte; float32:
 * max abs diff within {@link #FLOAT_TOLERANCE}, measured 0), and the Python raw output through
 * the Java postprocessing must give the same probabilities (within {@link #PROB_TOLERANCE}) and
 * the same ranking. Fixture folders: system property {@code edgemri.fixtures} or env
 * {@code EDGEMRI_FIXTURES}, several separated by the path separator.
 */
public class FixtureParityTest {
    static final double FLOAT_TOLERANCE = 1e-6;
    static final double PROB_TOLERANCE = 1e-6;

    @Test
    public void javaCoreMatchesPythonOnEveryFixture() throws IOException {
        String dirs = System.getProperty("edgemri.fixtures", System.getenv("EDGEMRI_FIXTURES"));
        Assume.assumeTrue("no fixtures given (-Dedgemri.fixtures=DIR or EDGEMRI_FIXTURES=DIR)",
                dirs != null && !dirs.isEmpty());
        int count = 0;
        int exactInt = 0;
        int outputs = 0;
        double floatDiff = 0;
        double probDiff = 0;
        List<String> failures = new ArrayList<>();
        for (String dir : dirs.split(File.pathSeparator)) {
            File folder = new File(dir);
            File spec = new File(folder, "fixtures.json");
            assertTrue("missing " + spec, spec.isFile());
            Map<?, ?> fx = (Map<?, ?>) Json.parse(read(spec));
            File manifestFile = new File(folder, (String) fx.get("manifest"));
            ModelManifest manifest = ModelManifest.parse(read(manifestFile), manifestFile.getPath());
            Preprocessor pre = new Preprocessor(manifest.input);
            Postprocessor post = new Postprocessor(manifest);
            for (Object o : (List<?>) fx.get("fixtures")) {
                Map<?, ?> e = (Map<?, ?>) o;
                String name = folder.getName() + "/" + e.get("name");
                count++;
                ModelInput x = pre.process(PngPixels.read(new File(folder, (String) e.get("image"))));
                byte[] want = Files.readAllBytes(new File(folder, (String) e.get("input")).toPath());
                if (x.bytes != null) {
                    if (java.util.Arrays.equals(want, x.bytes)) {
                        exactInt++;
                    } else {
                        failures.add(name + ": " + mismatches(want, x.bytes) + " of " + want.length
                                + " " + manifest.input.dtype + " input values differ");
                    }
                } else {
                    float[] py = floats(want);
                    assertEquals(name + " tensor size", py.length, x.floats.length);
                    for (int i = 0; i < py.length; i++) {
                        floatDiff = Math.max(floatDiff, Math.abs(py[i] - x.floats[i]));
                    }
                }
                if (e.get("output") == null) {
                    continue; // preprocessing-only fixture
                }
                outputs++;
                byte[] raw = Files.readAllBytes(new File(folder, (String) e.get("output")).toPath());
                float[] probs = "float32".equals(e.get("output_dtype")) ? post.probabilities(floats(raw))
                        : post.probabilities(raw);
                List<?> pyProbs = (List<?>) e.get("probabilities");
                for (int i = 0; i < probs.length; i++) {
                    probDiff = Math.max(probDiff, Math.abs(probs[i] - (Double) pyProbs.get(i)));
                }
                List<Prediction> ranked = post.topK(probs, probs.length);
                int[] javaRank = new int[ranked.size()];
                int[] pyRank = new int[ranked.size()];
                for (int i = 0; i < javaRank.length; i++) {
                    javaRank[i] = ranked.get(i).index;
                    pyRank[i] = ((Double) ((List<?>) e.get("ranking")).get(i)).intValue();
                }
                assertArrayEquals(name + " ranking", pyRank, javaRank);
            }
        }
        System.out.println(String.format(Locale.ROOT,
                "PARITY fixtures=%d int_exact=%d outputs=%d float_max_abs_diff=%.3g prob_max_abs_diff=%.3g",
                count, exactInt, outputs, floatDiff, probDiff));
        if (!failures.isEmpty()) {
            fail(String.join("\n", failures));
        }
        assertTrue("float input max abs diff " + floatDiff, floatDiff <= FLOAT_TOLERANCE);
        assertTrue("probability max abs diff " + probDiff, probDiff <= PROB_TOLERANCE);
        assertTrue("no fixtures found in " + dirs, count > 0);
    }

    private static int mismatches(byte[] a, byte[] b) {
        if (a.length != b.length) {
            return Math.max(a.length, b.length);
        }
        int n = 0;
        for (int i = 0; i < a.length; i++) {
            n += a[i] != b[i] ? 1 : 0;
        }
        return n;
    }

    private static float[] floats(byte[] le) {
        ByteBuffer buf = ByteBuffer.wrap(le).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[le.length / 4];
        for (int i = 0; i < out.length; i++) {
            out[i] = buf.getFloat();
        }
        return out;
    }

    private static String read(File f) throws IOException {
        return new String(Files.readAllBytes(f.toPath()), StandardCharsets.UTF_8);
    }
}
