package com.fintech.accounts;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/** Accounts read from the {@code accounts} table. */
final class JdbcAccountStore implements AccountStore {

    private final Database database;

    JdbcAccountStore(Database database) {
        this.database = database;
    }

    @Override
    public List<Account> list() throws SQLException {
        return database.call(connection -> {
            try (PreparedStatement select = connection.prepareStatement(
                    "SELECT id, iban, owner_name, currency, balance, status FROM accounts ORDER BY id");
                 ResultSet rows = select.executeQuery()) {
                List<Account> accounts = new ArrayList<>();
                while (rows.next()) {
                    accounts.add(new Account(rows.getLong("id"), rows.getString("iban"),
                        rows.getString("owner_name"), rows.getString("currency"),
                        rows.getBigDecimal("balance"), rows.getString("status")));
                }
                return accounts;
            }
        });
    }

    @Override
    public boolean ready() {
        return database.ready();
    }
}
