package com.fintech.contactus;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;

/**
 * Base class for handlers that answer with JSON; turns {@link HttpError}s into error bodies.
 */
abstract class JsonHandler implements HttpHandler {

    static final int OK = 200;
    static final int CREATED = 201;
    static final int BAD_REQUEST = 400;
    static final int NOT_FOUND = 404;
    static final int METHOD_NOT_ALLOWED = 405;
    static final int PAYLOAD_TOO_LARGE = 413;
    static final int CONFLICT = 409;
    static final int INTERNAL_ERROR = 500;
    static final int UNAVAILABLE = 503;
    static final String TRACE_HEADER = "X-Cloud-Trace-Context";
    static final int MAX_BODY_BYTES = 16 * 1024;

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
        } catch (Database.Unavailable e) {
            log(exchange, "WARNING", e.getMessage());
            response = Response.error(UNAVAILABLE, "database unavailable, retry later");
        } catch (SQLException | RuntimeException e) {
            log(exchange, "ERROR", "unhandled error: " + e);
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
     * @throws IOException if the request body cannot be read
     * @throws SQLException if the store fails
     */
    protected abstract Response respond(HttpExchange exchange) throws IOException, SQLException;

    /**
     * Logs one line about a request, with its trace when it carries {@value #TRACE_HEADER}.
     *
     * @param exchange the request
     * @param severity Cloud Logging severity
     * @param message what happened
     */
    static void log(HttpExchange exchange, String severity, String message) {
        Log.write(severity, exchange.getRequestMethod() + " " + exchange.getRequestURI() + ": " + message,
            exchange.getRequestHeaders().getFirst(TRACE_HEADER));
    }

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

    /**
     * Reads the request body as UTF-8, refusing bodies over {@link #MAX_BODY_BYTES}.
     *
     * @param exchange the request
     * @return the body text
     * @throws IOException if reading fails
     */
    static String readBody(HttpExchange exchange) throws IOException {
        byte[] body = exchange.getRequestBody().readNBytes(MAX_BODY_BYTES + 1);
        if (body.length > MAX_BODY_BYTES) {
            throw new HttpError(
                PAYLOAD_TOO_LARGE, "request body exceeds " + MAX_BODY_BYTES + " bytes", null);
        }
        return new String(body, StandardCharsets.UTF_8);
    }

    /** A response to send: an HTTP status code and a JSON body. */
    record Response(int status, String body) {
        static Response ok(String body) {
            return new Response(OK, body);
        }

        static Response created(String body) {
            return new Response(CREATED, body);
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

        static HttpError badRequest(String message) {
            return new HttpError(BAD_REQUEST, message, null);
        }

        static HttpError notFound(String path) {
            return new HttpError(NOT_FOUND, "no resource at " + path, null);
        }

        static HttpError conflict(String message) {
            return new HttpError(CONFLICT, message, null);
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
