package com.fintech.contactus;

import java.time.Instant;

/**
 * A message sent through the contact form by {@code name} at {@code email}; mirrors a row of
 * the {@code contact_messages} table.
 */
record ContactMessage(long id, String name, String email, String message, Instant createdAt) {

    String toJson() {
        return Json.object()
            .add("id", id)
            .add("name", name)
            .add("email", email)
            .add("message", message)
            .add("createdAt", createdAt.toString())
            .build();
    }
}
