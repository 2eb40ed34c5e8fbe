package com.fintech.contactus;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;

import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {

    @Test
    public void parsesWhatItWritesAndRejectsNestedOrMalformedInput() {
        String tricky = "say \"hi\"\n\\ \u0001 é";
        String json = Json.object().add("text", tricky).add("n", -15).add("none", null).build();

        assertEquals(
            "{\"text\":\"say \\\"hi\\\"\\n\\\\ \\u0001 é\",\"n\":-15,\"none\":null}", json);
        Map<String, String> fields = Json.parseFlatObject(json);
        assertEquals(tricky, fields.get("text"));
        assertEquals("-15", fields.get("n"));
        assertNull(fields.get("none"));
        assertEquals("A", Json.parseFlatObject("{ \"x\" : \"\\u0041\" }").get("x"));

        List<String> invalid = List.of("", "[]", "{\"a\":{}}", "{\"a\":1,}", "{\"a\":1} x",
            "{\"a\":tru}", "{\"a\":1,\"a\":2}", "{\"a\":\"\\q\"}", "{\"a\":\"\\u00g1\"}");
        for (String text : invalid) {
            assertThrows(text, IllegalArgumentException.class, () -> Json.parseFlatObject(text));
        }
    }
}
