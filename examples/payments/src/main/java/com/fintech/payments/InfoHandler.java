package com.fintech.payments;

import com.sun.net.httpserver.HttpExchange;
import java.util.List;

/**
 * Serves {@code GET /health} and the service description at {@code GET /}.
 */
final class InfoHandler extends JsonHandler {

    private final String health;
    private final String description;

    /**
     * Creates the handler; both bodies are fixed for the life of the process.
     *
     * @param service service name
     * @param version version from the jar manifest
     * @param env value of APP_ENV
     * @param summary one-line description of the service
     * @param endpoints the endpoints the service offers, like "GET /health"
     */
    InfoHandler(
        String service, String version, String env, String summary, List<String> endpoints) {
        this.health = Json.object()
            .add("status", "UP")
            .add("service", service)
            .add("version", version)
            .add("env", env)
            .build();
        this.description = Json.object()
            .add("service", service)
            .add("description", summary)
            .add("version", version)
            .addRaw("endpoints", Json.array(endpoints.stream().map(Json::quote).toList()))
            .build();
    }

    @Override
    protected Response respond(HttpExchange exchange) {
        String path = exchange.getRequestURI().getPath();
        String body = switch (path) {
            case "/" -> description;
            case "/health" -> health;
            default -> throw HttpError.notFound(path);
        };
        if (!"GET".equals(exchange.getRequestMethod())) {
            throw HttpError.methodNotAllowed(exchange.getRequestMethod(), "GET");
        }
        return Response.ok(body);
    }
}
