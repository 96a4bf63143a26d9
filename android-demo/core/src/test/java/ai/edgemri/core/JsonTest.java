package ai.edgemri.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {
    @Test
    public void parsesNestedValuesEscapesAndNumbers() {
        Map<?, ?> m = (Map<?, ?>) Json.parse(
                "{\"a\": [1, -2.5e3, true, false, null], \"s\": \"q\\\"\\\\\\n\\u00e9\", \"o\": {}}");
        List<?> a = (List<?>) m.get("a");
        assertEquals(1.0, a.get(0));
        assertEquals(-2500.0, a.get(1));
        assertEquals(Boolean.TRUE, a.get(2));
        assertNull(a.get(4));
        assertEquals("q\"\\\n\u00e9", m.get("s"));
        assertTrue(((Map<?, ?>) m.get("o")).isEmpty());
    }

    @Test
    public void readsPythonFloatReprBackToTheSameDouble() {
        // json.dumps(1 / 127.5) in Python
        assertEquals(1.0 / 127.5, (Double) Json.parse("0.00784313725490196"), 0.0);
    }

    @Test
    public void rejectsMalformedJson() {
        for (String bad : new String[] {"{", "[1,]", "{\"a\" 1}", "tru", "1 2", "\"x", "{\"a\":01x}"}) {
            assertThrows(bad, IllegalArgumentException.class, () -> Json.parse(bad));
        }
    }
}
