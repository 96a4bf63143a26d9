package ai.edgemri.core;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The manifest's optional {@code runtime} section: how this model ran fastest where it was tuned
 * ({@code edgemri tune}), the Java twin of {@code RuntimeHints} in {@code runtime/manifest.py}.
 *
 * <p>Hints are advice, never a reason to fail: a value of the wrong type or an option this app does
 * not know is ignored (the interpreter keeps its default), exactly as the Python runtime drops it
 * with a warning. Only a {@code runtime} that is not a JSON object is an error, as in Python.
 * A version 1 manifest has no section: {@link #NONE}.
 */
public final class RuntimeHints {
    /** No hints: every setting stays the app's or the interpreter's default. */
    public static final RuntimeHints NONE = new RuntimeHints(null, 0, Collections.<String, Object>emptyMap());

    /** The backend the hints were tuned for ("litert" on a phone); null: the format's default. */
    public final String backend;
    /** The tuned thread count; 0 when the hints do not set one. */
    public final int threads;
    /** Backend options as written (LiteRT: {@code xnnpack} true/false). */
    public final Map<String, Object> options;

    private RuntimeHints(String backend, int threads, Map<String, Object> options) {
        this.backend = backend;
        this.threads = threads;
        this.options = Collections.unmodifiableMap(options);
    }

    /**
     * The {@code runtime} value of a parsed manifest (null: {@link #NONE}); the manifest parser
     * prefixes the file name to the error.
     */
    public static RuntimeHints parse(Object section) {
        if (section == null) {
            return NONE;
        }
        if (!(section instanceof Map)) {
            throw new ManifestException("the runtime section must be an object");
        }
        Map<?, ?> map = (Map<?, ?>) section;
        Object backend = map.get("backend");
        Map<String, Object> options = new LinkedHashMap<>();
        if (map.get("options") instanceof Map) {
            for (Map.Entry<?, ?> e : ((Map<?, ?>) map.get("options")).entrySet()) {
                options.put(String.valueOf(e.getKey()), e.getValue());
            }
        }
        return new RuntimeHints(backend instanceof String ? (String) backend : null, positiveInt(map.get("threads")),
                options);
    }

    /** True when these hints were tuned for {@code backendName} (or name no backend). */
    public boolean appliesTo(String backendName) {
        return backend == null || backend.equals(backendName);
    }

    /** The hinted thread count, or {@code fallback} when there is none. */
    public int threadsOr(int fallback) {
        return threads > 0 ? threads : fallback;
    }

    /** The hinted LiteRT XNNPACK setting, or {@code fallback} when unset or not a boolean. */
    public boolean xnnpackOr(boolean fallback) {
        Object value = options.get("xnnpack");
        return value instanceof Boolean ? (Boolean) value : fallback;
    }

    /** True when there is anything to apply. */
    public boolean isEmpty() {
        return threads == 0 && options.isEmpty();
    }

    private static int positiveInt(Object value) {
        if (!(value instanceof Double)) {
            return 0;
        }
        double d = (Double) value;
        return d >= 1 && d == Math.rint(d) && d <= 1024 ? (int) d : 0;
    }
}
