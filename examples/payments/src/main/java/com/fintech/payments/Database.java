package com.fintech.payments;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The service's database, reached through JDBC (the MariaDB driver the base image carries) with the
 * platform's contract: {@code DB_HOST}, {@code DB_PORT}, {@code DB_NAME}, {@code DB_USER} and
 * {@code DB_PASSWORD_FILE}, a read-only file holding only the password (read once, at start).
 *
 * <p>Each worker thread keeps one connection; one that fails is dropped and the next request opens
 * a new one. A database restart closes every connection, and a request must not be the one to find
 * out once the database is back: a connection idle for more than half a second, or opened before the
 * last time the database was seen unreachable, is pinged ({@link Connection#isValid}) before use and
 * replaced when the ping fails. A watcher thread checks the database every second and, while it is
 * unreachable, with back-off (0.25 s doubling up to 2 s): {@link #ready()} says whether it answers,
 * and the readiness path reports it, so a replica whose database is down receives no traffic but is
 * not restarted. The watcher logs why the database does not answer (the driver's message, never the
 * password) when that reason changes.
 */
final class Database implements AutoCloseable {

    private static final int CONNECT_TIMEOUT_MS = 2000;
    private static final int SOCKET_TIMEOUT_MS = 10_000;
    private static final long HEALTHY_CHECK_MS = 1000;
    private static final long FIRST_BACKOFF_MS = 250;
    private static final long MAX_BACKOFF_MS = 2000;
    private static final long IDLE_BEFORE_PING_NANOS = 500_000_000L;
    private static final int PING_TIMEOUT_S = 2;

    private final String url;
    private final String user;
    private final String password;
    private final String description;
    private final AtomicBoolean ready = new AtomicBoolean();
    // Counts the times the database was seen unreachable: connections opened before the last time are suspect.
    private final AtomicLong outages = new AtomicLong();
    private final ThreadLocal<Held> connections = new ThreadLocal<>();
    private final Thread watcher;
    private volatile boolean closed;

    /** Connection settings as the platform gives them. */
    record Settings(String host, int port, String name, String user, Path passwordFile) {

        /**
         * Reads the settings from the environment; null when {@code DB_HOST} is not set.
         *
         * @param env environment variables
         * @return the settings, or null
         * @throws IllegalArgumentException when a variable is missing or invalid
         */
        static Settings fromEnvironment(Map<String, String> env) {
            String host = env.get("DB_HOST");
            if (host == null || host.isBlank()) {
                return null;
            }
            String port = required(env, "DB_PORT");
            try {
                return new Settings(host.trim(), Integer.parseInt(port), required(env, "DB_NAME"),
                    required(env, "DB_USER"), Path.of(required(env, "DB_PASSWORD_FILE")));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("DB_PORT must be a number, got '" + port + "'", e);
            }
        }

        private static String required(Map<String, String> env, String name) {
            String value = env.get(name);
            if (value == null || value.isBlank()) {
                throw new IllegalArgumentException(name + " must be set when DB_HOST is");
            }
            return value.trim();
        }
    }

    /**
     * Reads the password file and starts watching the database.
     *
     * @param settings where the database is and who connects
     * @throws IOException when the password file cannot be read
     */
    Database(Settings settings) throws IOException {
        this.url = "jdbc:mariadb://" + settings.host() + ":" + settings.port() + "/" + settings.name()
            + "?connectTimeout=" + CONNECT_TIMEOUT_MS + "&socketTimeout=" + SOCKET_TIMEOUT_MS;
        this.user = settings.user();
        this.password = readPassword(settings.passwordFile());
        this.description = settings.user() + "@" + settings.host() + ":" + settings.port() + "/" + settings.name();
        this.watcher = new Thread(this::watch, "database-watch");
        this.watcher.setDaemon(true);
        this.watcher.start();
    }

    private static String readPassword(Path file) throws IOException {
        try {
            return Files.readString(file, StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
            throw new IOException("cannot read DB_PASSWORD_FILE " + file + ": " + e, e);
        }
    }

    /**
     * Whether the database answered the last check.
     *
     * @return true when ready
     */
    boolean ready() {
        return ready.get();
    }

    /** Work done with a connection. */
    interface Work<T> {
        T run(Connection connection) throws SQLException;
    }

    /**
     * Runs {@code work} on this thread's connection (opened when needed); a connection that fails is
     * closed so the next call opens a fresh one.
     *
     * @param work what to do
     * @param <T> the result type
     * @return what {@code work} returned
     * @throws Unavailable when the database cannot be reached or the connection broke
     * @throws SQLException for other database errors (constraint violations, …)
     */
    <T> T call(Work<T> work) throws SQLException {
        Held held = connections.get();
        try {
            if (held != null && !usable(held)) {
                drop(held);
                held = null;
            }
            if (held == null) {
                long outagesBefore = outages.get();
                held = new Held(DriverManager.getConnection(url, user, password), outagesBefore);
                connections.set(held);
            }
            T result = work.run(held.connection);
            held.lastUsed = System.nanoTime();
            ready.set(true);
            return result;
        } catch (SQLException e) {
            if (isConnectionProblem(e)) {
                outages.incrementAndGet();
                drop(held);
                ready.set(false);
                throw new Unavailable(description, e);
            }
            throw e;
        }
    }

    /** Whether a kept connection may serve a request: pinged first when it may have outlived an outage. */
    private boolean usable(Held held) {
        long outagesNow = outages.get();
        boolean suspect = held.outages != outagesNow || System.nanoTime() - held.lastUsed > IDLE_BEFORE_PING_NANOS;
        try {
            if (held.connection.isClosed() || (suspect && !held.connection.isValid(PING_TIMEOUT_S))) {
                return false;
            }
        } catch (SQLException e) {
            return false;
        }
        held.outages = outagesNow;
        return true;
    }

    private static boolean isConnectionProblem(SQLException e) {
        String state = e.getSQLState();
        return e instanceof java.sql.SQLNonTransientConnectionException
            || e instanceof java.sql.SQLTransientConnectionException
            || (state != null && (state.startsWith("08") || state.startsWith("70100")))
            || e instanceof java.sql.SQLRecoverableException;
    }

    private void drop(Held held) {
        connections.remove();
        if (held != null) {
            try {
                held.connection.close();
            } catch (SQLException ignored) {
                // already broken
            }
        }
    }

    /** A worker thread's connection, when it last served, and the outage count when it was last known good. */
    private static final class Held {
        private final Connection connection;
        private long outages;
        private long lastUsed = System.nanoTime();

        Held(Connection connection, long outages) {
            this.connection = connection;
            this.outages = outages;
        }
    }

    private void watch() {
        long backoff = FIRST_BACKOFF_MS;
        String lastProblem = "";
        while (!closed) {
            String problem = check();
            boolean answers = problem == null;
            ready.set(answers);
            if (!answers) {
                outages.incrementAndGet();
            }
            if (answers && lastProblem != null) {
                Log.info("database " + description + " answers: ready");
            } else if (!answers && !problem.equals(lastProblem)) {
                Log.warning("database " + description + " unreachable (" + problem
                    + "): not ready, retrying with back-off");
            }
            lastProblem = problem;
            long pause = answers ? HEALTHY_CHECK_MS : backoff;
            backoff = answers ? FIRST_BACKOFF_MS : Math.min(backoff * 2, MAX_BACKOFF_MS);
            try {
                Thread.sleep(pause);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    /**
     * Opens a connection and runs {@code SELECT 1}.
     *
     * @return null when the database answers, else why not (the driver's message: never the password)
     */
    private String check() {
        try (Connection connection = DriverManager.getConnection(url, user, password);
             Statement statement = connection.createStatement()) {
            statement.execute("SELECT 1");
            return null;
        } catch (SQLException e) {
            return "SQLState " + e.getSQLState() + ", error " + e.getErrorCode() + ": " + e.getMessage();
        } catch (RuntimeException e) {
            // A driver bug must not end the watcher: readiness would stay down for good.
            return e.toString();
        }
    }

    @Override
    public void close() {
        closed = true;
        watcher.interrupt();
    }

    /** The database cannot be reached now; the request may be retried. */
    static final class Unavailable extends SQLException {
        private static final long serialVersionUID = 1L;

        Unavailable(String database, SQLException cause) {
            super("database " + database + " unavailable: " + cause.getMessage(), "08000", cause);
        }
    }
}
