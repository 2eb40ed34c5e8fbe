package com.fintech.payments;

import java.math.BigDecimal;
import java.sql.SQLException;
import java.util.List;

/** Where payments are kept: the payments table ({@link JdbcPaymentStore}) or memory ({@link MemoryPaymentStore}). */
interface PaymentStore {

    String ACCEPTED = "ACCEPTED";

    /** A payment and whether this call created it (false: an earlier call with the same key did). */
    record Accepted(Payment payment, boolean created) {
    }

    /**
     * Accepts a payment once per idempotency key: a retry with the same key returns the payment the
     * first call created, and never creates a second one.
     *
     * @param amount the amount, scale 2
     * @param currency ISO 4217 code
     * @param reference the payer's reference
     * @param idempotencyKey the client's key, or null for none
     * @return the payment and whether it was created now
     * @throws SQLException when the store cannot be reached
     */
    Accepted accept(BigDecimal amount, String currency, String reference, String idempotencyKey)
        throws SQLException;

    /**
     * All payments, oldest first.
     *
     * @return the payments
     * @throws SQLException when the store cannot be reached
     */
    List<Payment> list() throws SQLException;

    /**
     * Whether the store can serve requests now (readiness).
     *
     * @return true when ready
     */
    boolean ready();
}
