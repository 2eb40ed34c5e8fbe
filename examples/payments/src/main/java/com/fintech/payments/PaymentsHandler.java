package com.fintech.payments;

import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.math.BigDecimal;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * {@code POST /payments} accepts a payment; {@code GET /payments} lists accepted payments.
 */
final class PaymentsHandler extends JsonHandler {

    static final String PATH = "/payments";

    // The payments.amount column is DECIMAL(19, 2): 17 integer digits and 2 decimals.
    private static final int MAX_INTEGER_DIGITS = 17;
    private static final int CURRENCY_SCALE = 2;
    private static final int MAX_REFERENCE_LENGTH = 140;
    private static final Pattern CURRENCY = Pattern.compile("[A-Z]{3}");

    private final PaymentStore store;

    PaymentsHandler(PaymentStore store) {
        this.store = store;
    }

    @Override
    protected Response respond(HttpExchange exchange) throws IOException {
        requirePath(exchange, PATH);
        return switch (exchange.getRequestMethod()) {
            case "GET" -> Response.ok(
                Json.array(store.list().stream().map(Payment::toJson).toList()));
            case "POST" -> Response.created(accept(readBody(exchange)).toJson());
            default -> throw HttpError.methodNotAllowed(exchange.getRequestMethod(), "GET, POST");
        };
    }

    private Payment accept(String body) {
        Map<String, String> fields;
        try {
            fields = Json.parseFlatObject(body);
        } catch (IllegalArgumentException e) {
            throw HttpError.badRequest(e.getMessage());
        }
        BigDecimal amount = parseAmount(fields.get("amount"));
        String currency = fields.get("currency");
        if (currency == null || !CURRENCY.matcher(currency).matches()) {
            throw HttpError.badRequest("currency must be a three-letter ISO 4217 code like EUR");
        }
        String reference = fields.get("reference") == null ? "" : fields.get("reference").trim();
        if (reference.isEmpty() || reference.length() > MAX_REFERENCE_LENGTH) {
            throw HttpError.badRequest(
                "reference is required, at most " + MAX_REFERENCE_LENGTH + " characters");
        }
        return store.accept(amount, currency, reference);
    }

    /**
     * Reads a positive amount with at most two decimals, given as a JSON number or string.
     *
     * @param text the amount field, possibly null
     * @return the amount with scale 2
     */
    static BigDecimal parseAmount(String text) {
        if (text == null) {
            throw HttpError.badRequest("amount is required");
        }
        BigDecimal amount;
        try {
            amount = new BigDecimal(text.trim());
        } catch (NumberFormatException e) {
            throw HttpError.badRequest("amount must be a decimal number");
        }
        if (amount.signum() <= 0) {
            throw HttpError.badRequest("amount must be positive");
        }
        if ((long) amount.precision() - amount.scale() > MAX_INTEGER_DIGITS) {
            throw HttpError.badRequest("amount is too large");
        }
        if (amount.stripTrailingZeros().scale() > CURRENCY_SCALE) {
            throw HttpError.badRequest("amount must have at most " + CURRENCY_SCALE + " decimals");
        }
        return amount.setScale(CURRENCY_SCALE);
    }
}
