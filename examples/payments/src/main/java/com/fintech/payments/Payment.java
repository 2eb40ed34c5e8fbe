package com.fintech.payments;

import java.math.BigDecimal;
import java.time.Instant;

/**
 * A payment of {@code amount} in {@code currency} (ISO 4217); mirrors a row of the
 * {@code payments} table. The amount is written as a JSON string to keep it exact.
 */
record Payment(long id, BigDecimal amount, String currency, String reference, String status,
    Instant createdAt, String idempotencyKey) {

    String toJson() {
        Json.ObjectBuilder json = Json.object()
            .add("id", id)
            .add("amount", amount.toPlainString())
            .add("currency", currency)
            .add("reference", reference)
            .add("status", status)
            .add("createdAt", createdAt.toString());
        if (idempotencyKey != null) {
            json.add("idempotencyKey", idempotencyKey);
        }
        return json.build();
    }
}
