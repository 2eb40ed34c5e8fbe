package com.fintech.accounts;

import java.math.BigDecimal;
import java.util.List;

/**
 * Accounts in memory with fixed demo data: for a service run without a database ({@code DB_HOST}
 * unset, only outside staging and production) and for tests. The table gets the same two accounts
 * from the migration V3__seed_demo_accounts.sql.
 */
final class MemoryAccountStore implements AccountStore {

    private final List<Account> accounts;

    MemoryAccountStore(List<Account> accounts) {
        this.accounts = List.copyOf(accounts);
    }

    /**
     * Returns a store holding two demo accounts (with the IBAN standard's example numbers).
     *
     * @return the demo store
     */
    static MemoryAccountStore withDemoData() {
        return new MemoryAccountStore(List.of(
            new Account(1, "DE89370400440532013000", "Erika Mustermann", "EUR",
                new BigDecimal("1250.00"), "ACTIVE"),
            new Account(2, "GB82WEST12345698765432", "John Smith", "GBP",
                new BigDecimal("310.45"), "ACTIVE")));
    }

    @Override
    public List<Account> list() {
        return accounts;
    }

    @Override
    public boolean ready() {
        return true;
    }
}
