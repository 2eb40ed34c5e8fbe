package com.fintech.contactus;

import java.time.Clock;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Messages in memory, lost when the process ends: for a service run without a database
 * ({@code DB_HOST} unset, only outside staging and production) and for tests.
 */
final class MemoryMessageStore implements MessageStore {

    private final AtomicLong lastId = new AtomicLong();
    private final List<ContactMessage> messages = new CopyOnWriteArrayList<>();
    private final Clock clock;

    MemoryMessageStore(Clock clock) {
        this.clock = clock;
    }

    @Override
    public ContactMessage add(String name, String email, String text) {
        Instant now = Instant.now(clock).truncatedTo(ChronoUnit.SECONDS);
        ContactMessage saved = new ContactMessage(lastId.incrementAndGet(), name, email, text, now);
        messages.add(saved);
        return saved;
    }

    @Override
    public List<ContactMessage> list() {
        return List.copyOf(messages);
    }

    @Override
    public boolean ready() {
        return true;
    }
}
