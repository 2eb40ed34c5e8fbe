package com.fintech.accounts;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Base class for handlers that answer with JSON; turns {@link HttpError}s into error bodies.
 */
abstract class JsonHandler implements HttpHandler {

    static final int OK = 200;
    static final int NOT_FOUND = 404;
    static final int METHOD_NOT_ALLOWED = 405;
    static final int INTERNAL_ERROR = 500;

    @Override
    public final void handle(HttpExchange exchange) throws IOException {
        Response response;
        try {
            response = respond(exchange);
        } catch (HttpError e) {
            if (e.allow() != null) {
                exchange.getResponseHeaders().set("Allow", e.allow());
            }
            response = Response.error(e.status(), e.getMessage());
        } catch (RuntimeException e) {
            System.err.println("Unhandled error for " + exchange.getRequestURI() + ": " + e);
            response = Response.error(INTERNAL_ERROR, "internal error");
        }
        byte[] body = response.body().getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
        exchange.sendResponseHeaders(response.status(), body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    /**
     * Handles one request.
     *
     * @param exchange the request
     * @return the status and JSON body to send
     */
    protected abstract Response respond(HttpExchange exchange);

    /**
     * Fails with 404 unless the request path is exactly {@code path}.
     *
     * @param exchange the request
     * @param path the only path this handler serves
     */
    static void requirePath(HttpExchange exchange, String path) {
        String actual = exchange.getRequestURI().getPath();
        if (!path.equals(actual)) {
            throw HttpError.notFound(actual);
        }
    }

    /** A response to send: an HTTP status code and a JSON body. */
    record Response(int status, String body) {
        static Response ok(String body) {
            return new Response(OK, body);
        }

        static Response error(int status, String message) {
            return new Response(status, Json.object().add("error", message).build());
        }
    }

    /** A client error that ends request handling with the given status. */
    static final class HttpError extends RuntimeException {
        private static final long serialVersionUID = 1L;

        private final int status;
        private final String allow;

        private HttpError(int status, String message, String allow) {
            super(message);
            this.status = status;
            this.allow = allow;
        }

        static HttpError notFound(String path) {
            return new HttpError(NOT_FOUND, "no resource at " + path, null);
        }

        static HttpError methodNotAllowed(String method, String allow) {
            return new HttpError(METHOD_NOT_ALLOWED, "method " + method + " not allowed", allow);
        }

        int status() {
            return status;
        }

        String allow() {
            return allow;
        }
    }
}
