package com.fintech.accounts;

import java.sql.SQLException;
import java.util.List;

/** Where accounts are read from: the accounts table ({@link JdbcAccountStore}) or memory. */
interface AccountStore {

    /**
     * All accounts, by id.
     *
     * @return the accounts
     * @throws SQLException when the store cannot be reached
     */
    List<Account> list() throws SQLException;

    /**
     * Whether the store can serve requests now (readiness).
     *
     * @return true when ready
     */
    boolean ready();
}
