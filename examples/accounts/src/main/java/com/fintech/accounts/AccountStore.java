package com.fintech.accounts;

import java.math.BigDecimal;
import java.util.List;

/** In-memory accounts with fixed demo data, until the accounts table is wired in. */
final class AccountStore {

    private final List<Account> accounts;

    AccountStore(List<Account> accounts) {
        this.accounts = List.copyOf(accounts);
    }

    /**
     * Returns a store holding two demo accounts (with the IBAN standard's example numbers).
     *
     * @return the demo store
     */
    static AccountStore withDemoData() {
        return new AccountStore(List.of(
            new Account(1, "DE89370400440532013000", "Erika Mustermann", "EUR",
                new BigDecimal("1250.00"), "ACTIVE"),
            new Account(2, "GB82WEST12345698765432", "John Smith", "GBP",
                new BigDecimal("310.45"), "ACTIVE")));
    }

    List<Account> list() {
        return accounts;
    }
}
