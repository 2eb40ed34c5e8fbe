package com.fintech.payments;

import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.math.BigDecimal;
import java.sql.SQLException;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * {@code POST /payments} accepts a payment; {@code GET /payments} lists accepted payments.
 *
 * <p>A POST with an {@code Idempotency-Key} header creates at most one payment per key: a retry
 * (after a timeout, a 503, a lost answer) gets the payment the first request created, with 200
 * instead of 201; the same key with a different payment is refused with 409.
 */
final class PaymentsHandler extends JsonHandler {

    static final String PATH = "/payments";

    // The payments.amount column is DECIMAL(19, 2): 17 integer digits and 2 decimals.
    private static final int MAX_INTEGER_DIGITS = 17;
    private static final int CURRENCY_SCALE = 2;
    private static final int MAX_REFERENCE_LENGTH = 140;
    private static final Pattern CURRENCY = Pattern.compile("[A-Z]{3}");
    private static final Pattern IDEMPOTENCY_KEY = Pattern.compile("[A-Za-z0-9_.:-]{1,64}");
    static final String IDEMPOTENCY_HEADER = "Idempotency-Key";

    private final PaymentStore store;

    PaymentsHandler(PaymentStore store) {
        this.store = store;
    }

    @Override
    protected Response respond(HttpExchange exchange) throws IOException, SQLException {
        requirePath(exchange, PATH);
        return switch (exchange.getRequestMethod()) {
            case "GET" -> Response.ok(
                Json.array(store.list().stream().map(Payment::toJson).toList()));
            case "POST" -> post(exchange);
            default -> throw HttpError.methodNotAllowed(exchange.getRequestMethod(), "GET, POST");
        };
    }

    private Response post(HttpExchange exchange) throws IOException, SQLException {
        String key = exchange.getRequestHeaders().getFirst(IDEMPOTENCY_HEADER);
        if (key != null && !IDEMPOTENCY_KEY.matcher(key).matches()) {
            throw HttpError.badRequest(IDEMPOTENCY_HEADER + " must be 1-64 letters, digits or _ . : -");
        }
        Payment asked = parse(readBody(exchange));
        PaymentStore.Accepted accepted =
            store.accept(asked.amount(), asked.currency(), asked.reference(), key);
        Payment payment = accepted.payment();
        if (!accepted.created() && (payment.amount().compareTo(asked.amount()) != 0
            || !payment.currency().equals(asked.currency()) || !payment.reference().equals(asked.reference()))) {
            throw HttpError.conflict(IDEMPOTENCY_HEADER + " " + key + " was used for another payment");
        }
        if (accepted.created()) {
            log(exchange, "INFO", "payment " + payment.id() + " accepted");
            return Response.created(payment.toJson());
        }
        return Response.ok(payment.toJson());
    }

    private Payment parse(String body) {
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
        return new Payment(0, amount, currency, reference, PaymentStore.ACCEPTED, null, null);
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
