package com.fintech.payments;

import java.math.BigDecimal;
import java.time.Clock;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Payments in memory, lost when the process ends: for a service run without a database
 * ({@code DB_HOST} unset, only outside staging and production) and for tests.
 */
final class MemoryPaymentStore implements PaymentStore {

    private final List<Payment> payments = new ArrayList<>();
    private final Map<String, Payment> byKey = new HashMap<>();
    private final Clock clock;

    MemoryPaymentStore(Clock clock) {
        this.clock = clock;
    }

    @Override
    public synchronized Accepted accept(
        BigDecimal amount, String currency, String reference, String idempotencyKey) {
        if (idempotencyKey != null && byKey.containsKey(idempotencyKey)) {
            return new Accepted(byKey.get(idempotencyKey), false);
        }
        Instant now = Instant.now(clock).truncatedTo(ChronoUnit.SECONDS);
        Payment saved = new Payment(
            payments.size() + 1L, amount, currency, reference, ACCEPTED, now, idempotencyKey);
        payments.add(saved);
        if (idempotencyKey != null) {
            byKey.put(idempotencyKey, saved);
        }
        return new Accepted(saved, true);
    }

    @Override
    public synchronized List<Payment> list() {
        return List.copyOf(payments);
    }

    @Override
    public boolean ready() {
        return true;
    }
}
