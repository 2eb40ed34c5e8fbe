package com.fintech.contactus;

import java.util.Map;
import java.util.Set;

/**
 * Runtime configuration, read from environment variables when the service starts:
 * {@code PORT} (default 8080; 0 picks a free port), {@code BIND_ADDRESS} (default 127.0.0.1),
 * {@code APP_ENV} (dev, ci, staging or production; default dev), and two demo flags:
 * {@code CRASH_ON_START} ("true" makes the service exit with an error at once) and
 * {@code CRASH_AFTER_SECONDS} (a positive number n: the service starts normally and exits with an
 * error n seconds later; absent or empty means never).
 */
record AppConfig(
    int port, String bindAddress, String appEnv, boolean crashOnStart, int crashAfterSeconds) {

    static final int DEFAULT_PORT = 8080;
    static final String DEFAULT_BIND_ADDRESS = "127.0.0.1";
    static final String DEFAULT_APP_ENV = "dev";
    static final Set<String> APP_ENVS = Set.of("dev", "ci", "staging", "production");
    /** The {@link #crashAfterSeconds()} value when {@code CRASH_AFTER_SECONDS} is not set. */
    static final int NEVER_CRASH = 0;

    private static final int MAX_PORT = 65_535;

    /**
     * Reads the configuration from an environment map such as {@link System#getenv()}.
     *
     * @param env environment variables
     * @return the configuration
     * @throws IllegalArgumentException if a variable holds an invalid value
     */
    static AppConfig fromEnvironment(Map<String, String> env) {
        String portText = valueOrDefault(env, "PORT", Integer.toString(DEFAULT_PORT));
        int port;
        try {
            port = Integer.parseInt(portText);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("PORT must be a number, got '" + portText + "'", e);
        }
        if (port < 0 || port > MAX_PORT) {
            throw new IllegalArgumentException("PORT must be between 0 and " + MAX_PORT);
        }
        String appEnv = valueOrDefault(env, "APP_ENV", DEFAULT_APP_ENV);
        if (!APP_ENVS.contains(appEnv)) {
            throw new IllegalArgumentException(
                "APP_ENV must be one of " + APP_ENVS + ", got '" + appEnv + "'");
        }
        return new AppConfig(
            port,
            valueOrDefault(env, "BIND_ADDRESS", DEFAULT_BIND_ADDRESS),
            appEnv,
            "true".equalsIgnoreCase(env.get("CRASH_ON_START")),
            crashAfterSeconds(env));
    }

    private static int crashAfterSeconds(Map<String, String> env) {
        String text = valueOrDefault(env, "CRASH_AFTER_SECONDS", "");
        if (text.isEmpty()) {
            return NEVER_CRASH;
        }
        int seconds;
        try {
            seconds = Integer.parseInt(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(
                "CRASH_AFTER_SECONDS must be a number, got '" + text + "'", e);
        }
        if (seconds <= 0) {
            throw new IllegalArgumentException(
                "CRASH_AFTER_SECONDS must be a positive number of seconds, got '" + text + "'");
        }
        return seconds;
    }

    private static String valueOrDefault(Map<String, String> env, String name, String fallback) {
        String value = env.get(name);
        return value == null || value.isBlank() ? fallback : value.trim();
    }
}
