package com.fintech.accounts;

import com.sun.net.httpserver.HttpExchange;
import java.sql.SQLException;

/**
 * {@code GET /accounts} lists the accounts.
 */
final class AccountsHandler extends JsonHandler {

    static final String PATH = "/accounts";

    private final AccountStore store;

    AccountsHandler(AccountStore store) {
        this.store = store;
    }

    @Override
    protected Response respond(HttpExchange exchange) throws SQLException {
        requirePath(exchange, PATH);
        if (!"GET".equals(exchange.getRequestMethod())) {
            throw HttpError.methodNotAllowed(exchange.getRequestMethod(), "GET");
        }
        return Response.ok(Json.array(store.list().stream().map(Account::toJson).toList()));
    }
}
