package com.fintech.accounts;

import java.math.BigDecimal;

/**
 * A customer account identified by its IBAN; mirrors a row of the {@code accounts} table.
 * The balance is written as a JSON string to keep it exact.
 */
record Account(
    long id, String iban, String ownerName, String currency, BigDecimal balance, String status) {

    String toJson() {
        return Json.object()
            .add("id", id)
            .add("iban", iban)
            .add("ownerName", ownerName)
            .add("currency", currency)
            .add("balance", balance.toPlainString())
            .add("status", status)
            .build();
    }
}
