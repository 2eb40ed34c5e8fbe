package com.fintech.contactus;

import com.sun.net.httpserver.HttpExchange;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * Serves the service description at {@code GET /}, readiness at {@code GET /health} (200 while the
 * database answers, 503 while it does not: no traffic, but no restart either) and liveness at
 * {@code GET /live} (200 while the process serves requests at all).
 */
final class InfoHandler extends JsonHandler {

    private final String health;
    private final String down;
    private final String live;
    private final String description;
    private final BooleanSupplier ready;

    /**
     * Creates the handler; both bodies are fixed for the life of the process.
     *
     * @param service service name
     * @param version version from the jar manifest
     * @param env value of APP_ENV
     * @param summary one-line description of the service
     * @param endpoints the endpoints the service offers, like "GET /health"
     * @param ready whether the service's database answers
     */
    InfoHandler(String service, String version, String env, String summary, List<String> endpoints,
        BooleanSupplier ready) {
        this.ready = ready;
        this.health = status("UP", service, version, env);
        this.down = status("DOWN", service, version, env);
        this.live = Json.object().add("status", "UP").add("service", service).build();
        this.description = Json.object()
            .add("service", service)
            .add("description", summary)
            .add("version", version)
            .addRaw("endpoints", Json.array(endpoints.stream().map(Json::quote).toList()))
            .build();
    }

    private static String status(String status, String service, String version, String env) {
        return Json.object()
            .add("status", status)
            .add("service", service)
            .add("version", version)
            .add("env", env)
            .build();
    }

    @Override
    protected Response respond(HttpExchange exchange) {
        String path = exchange.getRequestURI().getPath();
        if (!List.of("/", "/health", "/live").contains(path)) {
            throw HttpError.notFound(path);
        }
        if (!"GET".equals(exchange.getRequestMethod())) {
            throw HttpError.methodNotAllowed(exchange.getRequestMethod(), "GET");
        }
        return switch (path) {
            case "/health" -> ready.getAsBoolean() ? Response.ok(health) : new Response(UNAVAILABLE, down);
            case "/live" -> Response.ok(live);
            default -> Response.ok(description);
        };
    }
}
