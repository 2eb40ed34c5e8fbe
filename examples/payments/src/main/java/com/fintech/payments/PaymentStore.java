package com.fintech.payments;

import java.math.BigDecimal;
import java.time.Clock;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/** Thread-safe in-memory storage for payments, until the payments table is wired in. */
final class PaymentStore {

    static final String ACCEPTED = "ACCEPTED";

    private final AtomicLong lastId = new AtomicLong();
    private final List<Payment> payments = new CopyOnWriteArrayList<>();
    private final Clock clock;

    PaymentStore(Clock clock) {
        this.clock = clock;
    }

    Payment accept(BigDecimal amount, String currency, String reference) {
        Instant now = Instant.now(clock).truncatedTo(ChronoUnit.SECONDS);
        Payment saved =
            new Payment(lastId.incrementAndGet(), amount, currency, reference, ACCEPTED, now);
        payments.add(saved);
        return saved;
    }

    List<Payment> list() {
        return List.copyOf(payments);
    }
}
