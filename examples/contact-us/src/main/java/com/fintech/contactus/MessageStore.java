package com.fintech.contactus;

import java.time.Clock;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/** Thread-safe in-memory storage for messages, until the contact_messages table is wired in. */
final class MessageStore {

    private final AtomicLong lastId = new AtomicLong();
    private final List<ContactMessage> messages = new CopyOnWriteArrayList<>();
    private final Clock clock;

    MessageStore(Clock clock) {
        this.clock = clock;
    }

    ContactMessage add(String name, String email, String text) {
        Instant now = Instant.now(clock).truncatedTo(ChronoUnit.SECONDS);
        ContactMessage saved = new ContactMessage(lastId.incrementAndGet(), name, email, text, now);
        messages.add(saved);
        return saved;
    }

    List<ContactMessage> list() {
        return List.copyOf(messages);
    }
}
