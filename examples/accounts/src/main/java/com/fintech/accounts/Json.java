package com.fintech.accounts;

import java.util.Collection;
import java.util.StringJoiner;

/** Just enough JSON for this service: building response bodies. */
final class Json {

    private static final char FIRST_PRINTABLE = 0x20;

    private Json() {
    }

    /**
     * Returns a JSON string literal for {@code value}, or {@code null} for a null value.
     *
     * @param value text to quote
     * @return the JSON literal
     */
    static String quote(String value) {
        if (value == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder(value.length() + 2).append('"');
        for (char c : value.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < FIRST_PRINTABLE) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }

    /**
     * Starts a JSON object.
     *
     * @return an empty object builder
     */
    static ObjectBuilder object() {
        return new ObjectBuilder();
    }

    /**
     * Joins already-encoded JSON values into an array.
     *
     * @param values encoded JSON values
     * @return the JSON array
     */
    static String array(Collection<String> values) {
        return "[" + String.join(",", values) + "]";
    }

    /** Builds a JSON object field by field. */
    static final class ObjectBuilder {
        private final StringJoiner fields = new StringJoiner(",", "{", "}");

        ObjectBuilder add(String name, String value) {
            return addRaw(name, quote(value));
        }

        ObjectBuilder add(String name, long value) {
            return addRaw(name, Long.toString(value));
        }

        ObjectBuilder addRaw(String name, String json) {
            fields.add(quote(name) + ":" + json);
            return this;
        }

        String build() {
            return fields.toString();
        }
    }
}
