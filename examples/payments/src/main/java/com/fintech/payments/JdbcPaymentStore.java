package com.fintech.payments;

import java.math.BigDecimal;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLIntegrityConstraintViolationException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

/**
 * Payments in the {@code payments} table. The idempotency key has a unique index: a second insert
 * with the same key fails, and the payment the first one created is returned instead.
 */
final class JdbcPaymentStore implements PaymentStore {

    private static final String COLUMNS =
        "id, amount, currency, reference, status, created_at, idempotency_key";

    private final Database database;

    JdbcPaymentStore(Database database) {
        this.database = database;
    }

    @Override
    public Accepted accept(BigDecimal amount, String currency, String reference, String idempotencyKey)
        throws SQLException {
        try {
            long id = database.call(connection -> {
                try (PreparedStatement insert = connection.prepareStatement(
                    "INSERT INTO payments (amount, currency, reference, status, idempotency_key) "
                        + "VALUES (?, ?, ?, ?, ?)", Statement.RETURN_GENERATED_KEYS)) {
                    insert.setBigDecimal(1, amount);
                    insert.setString(2, currency);
                    insert.setString(3, reference);
                    insert.setString(4, ACCEPTED);
                    insert.setString(5, idempotencyKey);
                    insert.executeUpdate();
                    try (ResultSet keys = insert.getGeneratedKeys()) {
                        keys.next();
                        return keys.getLong(1);
                    }
                }
            });
            return new Accepted(find("id = ?", Long.toString(id)), true);
        } catch (SQLIntegrityConstraintViolationException duplicate) {
            if (idempotencyKey == null) {
                throw duplicate;
            }
            return new Accepted(find("idempotency_key = ?", idempotencyKey), false);
        }
    }

    @Override
    public List<Payment> list() throws SQLException {
        return database.call(connection -> {
            try (PreparedStatement select = connection.prepareStatement(
                    "SELECT " + COLUMNS + " FROM payments ORDER BY id");
                 ResultSet rows = select.executeQuery()) {
                List<Payment> payments = new ArrayList<>();
                while (rows.next()) {
                    payments.add(read(rows));
                }
                return payments;
            }
        });
    }

    @Override
    public boolean ready() {
        return database.ready();
    }

    private Payment find(String condition, String value) throws SQLException {
        return database.call(connection -> {
            try (PreparedStatement select = connection.prepareStatement(
                "SELECT " + COLUMNS + " FROM payments WHERE " + condition)) {
                select.setString(1, value);
                try (ResultSet rows = select.executeQuery()) {
                    if (!rows.next()) {
                        throw new SQLException("payment " + value + " vanished after it was written");
                    }
                    return read(rows);
                }
            }
        });
    }

    private static Payment read(ResultSet rows) throws SQLException {
        return new Payment(rows.getLong("id"), rows.getBigDecimal("amount"), rows.getString("currency"),
            rows.getString("reference"), rows.getString("status"),
            rows.getTimestamp("created_at").toInstant(), rows.getString("idempotency_key"));
    }
}
