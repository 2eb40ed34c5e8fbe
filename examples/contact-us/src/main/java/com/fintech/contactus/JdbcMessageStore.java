package com.fintech.contactus;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;

/** Messages in the {@code contact_messages} table. */
final class JdbcMessageStore implements MessageStore {

    private final Database database;

    JdbcMessageStore(Database database) {
        this.database = database;
    }

    @Override
    public ContactMessage add(String name, String email, String text) throws SQLException {
        Instant now = Instant.now().truncatedTo(ChronoUnit.SECONDS);
        long id = database.call(connection -> {
            try (PreparedStatement insert = connection.prepareStatement(
                "INSERT INTO contact_messages (name, email, message, created_at) VALUES (?, ?, ?, ?)",
                Statement.RETURN_GENERATED_KEYS)) {
                insert.setString(1, name);
                insert.setString(2, email);
                insert.setString(3, text);
                insert.setTimestamp(4, java.sql.Timestamp.from(now));
                insert.executeUpdate();
                try (ResultSet keys = insert.getGeneratedKeys()) {
                    keys.next();
                    return keys.getLong(1);
                }
            }
        });
        return new ContactMessage(id, name, email, text, now);
    }

    @Override
    public List<ContactMessage> list() throws SQLException {
        return database.call(connection -> {
            try (PreparedStatement select = connection.prepareStatement(
                    "SELECT id, name, email, message, created_at FROM contact_messages ORDER BY id");
                 ResultSet rows = select.executeQuery()) {
                List<ContactMessage> messages = new ArrayList<>();
                while (rows.next()) {
                    messages.add(new ContactMessage(rows.getLong("id"), rows.getString("name"),
                        rows.getString("email"), rows.getString("message"),
                        rows.getTimestamp("created_at").toInstant()));
                }
                return messages;
            }
        });
    }

    @Override
    public boolean ready() {
        return database.ready();
    }
}
