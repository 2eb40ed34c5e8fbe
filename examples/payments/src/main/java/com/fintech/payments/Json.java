package com.fintech.payments;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.StringJoiner;
import java.util.regex.Pattern;

/** Just enough JSON for this service: building responses and reading flat request objects. */
final class Json {

    private static final char FIRST_PRINTABLE = 0x20;
    private static final int HEX_RADIX = 16;
    private static final int UNICODE_ESCAPE_DIGITS = 4;
    private static final Pattern NUMBER =
        Pattern.compile("-?(0|[1-9]\\d*)(\\.\\d+)?([eE][+-]?\\d+)?");

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

    /**
     * Parses a JSON object whose values are strings, numbers, booleans or null.
     * Numbers and booleans are returned as their literal text, null as a null value.
     *
     * @param text the JSON document
     * @return the fields in document order
     * @throws IllegalArgumentException if the text is not such an object
     */
    static Map<String, String> parseFlatObject(String text) {
        return new Parser(text).parseDocument();
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

    /** Recursive-descent parser for a single flat object. */
    private static final class Parser {
        private final String text;
        private int pos;

        Parser(String text) {
            this.text = text;
        }

        Map<String, String> parseDocument() {
            Map<String, String> fields = new LinkedHashMap<>();
            skipWhitespace();
            expect('{');
            skipWhitespace();
            if (peek() != '}') {
                do {
                    skipWhitespace();
                    String name = parseString();
                    if (fields.containsKey(name)) {
                        throw error("duplicate field '" + name + "'");
                    }
                    skipWhitespace();
                    expect(':');
                    skipWhitespace();
                    fields.put(name, parseValue());
                    skipWhitespace();
                } while (consume(','));
            }
            expect('}');
            skipWhitespace();
            if (pos != text.length()) {
                throw error("unexpected content after the object");
            }
            return fields;
        }

        private String parseValue() {
            char first = peek();
            if (first == '"') {
                return parseString();
            }
            if (first == '{' || first == '[') {
                throw error("nested objects and arrays are not supported");
            }
            int start = pos;
            while (pos < text.length() && isLiteralChar(text.charAt(pos))) {
                pos++;
            }
            String literal = text.substring(start, pos);
            if ("null".equals(literal)) {
                return null;
            }
            boolean isBoolean = "true".equals(literal) || "false".equals(literal);
            if (isBoolean || NUMBER.matcher(literal).matches()) {
                return literal;
            }
            throw error("invalid value '" + literal + "'");
        }

        private String parseString() {
            expect('"');
            StringBuilder out = new StringBuilder();
            while (true) {
                char c = next();
                if (c == '"') {
                    return out.toString();
                }
                if (c == '\\') {
                    out.append(parseEscape());
                } else if (c < FIRST_PRINTABLE) {
                    throw error("control character in string");
                } else {
                    out.append(c);
                }
            }
        }

        private char parseEscape() {
            char c = next();
            return switch (c) {
                case '"', '\\', '/' -> c;
                case 'b' -> '\b';
                case 'f' -> '\f';
                case 'n' -> '\n';
                case 'r' -> '\r';
                case 't' -> '\t';
                case 'u' -> parseUnicodeEscape();
                default -> throw error("invalid escape '\\" + c + "'");
            };
        }

        private char parseUnicodeEscape() {
            int code = 0;
            for (int i = 0; i < UNICODE_ESCAPE_DIGITS; i++) {
                int digit = Character.digit(next(), HEX_RADIX);
                if (digit < 0) {
                    throw error("invalid unicode escape");
                }
                code = code * HEX_RADIX + digit;
            }
            return (char) code;
        }

        private static boolean isLiteralChar(char c) {
            return Character.isLetterOrDigit(c) || c == '-' || c == '+' || c == '.';
        }

        private void skipWhitespace() {
            while (pos < text.length() && Character.isWhitespace(text.charAt(pos))) {
                pos++;
            }
        }

        private boolean consume(char expected) {
            if (pos < text.length() && text.charAt(pos) == expected) {
                pos++;
                return true;
            }
            return false;
        }

        private void expect(char expected) {
            if (!consume(expected)) {
                throw error("expected '" + expected + "'");
            }
        }

        private char peek() {
            if (pos >= text.length()) {
                throw error("unexpected end of input");
            }
            return text.charAt(pos);
        }

        private char next() {
            char c = peek();
            pos++;
            return c;
        }

        private IllegalArgumentException error(String message) {
            return new IllegalArgumentException("invalid JSON at offset " + pos + ": " + message);
        }
    }
}
