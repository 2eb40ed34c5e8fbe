package com.fintech.contactus;

import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.sql.SQLException;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * {@code POST /messages} stores a contact message; {@code GET /messages} lists them.
 */
final class MessagesHandler extends JsonHandler {

    static final String PATH = "/messages";

    private static final int MAX_NAME_LENGTH = 100;
    private static final int MAX_EMAIL_LENGTH = 191;
    private static final int MAX_MESSAGE_LENGTH = 4000;
    private static final Pattern EMAIL = Pattern.compile("[^@\\s]+@[^@\\s]+\\.[^@\\s]+");

    private final MessageStore store;

    MessagesHandler(MessageStore store) {
        this.store = store;
    }

    @Override
    protected Response respond(HttpExchange exchange) throws IOException, SQLException {
        requirePath(exchange, PATH);
        return switch (exchange.getRequestMethod()) {
            case "GET" -> Response.ok(
                Json.array(store.list().stream().map(ContactMessage::toJson).toList()));
            case "POST" -> Response.created(create(readBody(exchange)).toJson());
            default -> throw HttpError.methodNotAllowed(exchange.getRequestMethod(), "GET, POST");
        };
    }

    private ContactMessage create(String body) throws SQLException {
        Map<String, String> fields;
        try {
            fields = Json.parseFlatObject(body);
        } catch (IllegalArgumentException e) {
            throw HttpError.badRequest(e.getMessage());
        }
        String name = requiredText(fields, "name", MAX_NAME_LENGTH);
        String email = requiredText(fields, "email", MAX_EMAIL_LENGTH);
        if (!EMAIL.matcher(email).matches()) {
            throw HttpError.badRequest("email is not a valid address");
        }
        return store.add(name, email, requiredText(fields, "message", MAX_MESSAGE_LENGTH));
    }

    private static String requiredText(Map<String, String> fields, String field, int maxLength) {
        String value = fields.get(field);
        if (value == null || value.isBlank()) {
            throw HttpError.badRequest(field + " is required");
        }
        String trimmed = value.trim();
        if (trimmed.length() > maxLength) {
            throw HttpError.badRequest(field + " must be at most " + maxLength + " characters");
        }
        return trimmed;
    }
}
