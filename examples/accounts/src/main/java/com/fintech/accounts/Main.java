package com.fintech.accounts;

import com.sun.net.httpserver.HttpHandler;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.Timer;
import java.util.TimerTask;
import java.util.concurrent.TimeUnit;

/** Starts the accounts service with configuration from environment variables. */
public final class Main {

    static final String SERVICE = "accounts";

    private static final String SUMMARY = "Lists customer accounts and their balances.";
    private static final List<String> ENDPOINTS =
        List.of("GET /health", "GET /live", "GET /accounts");
    private static final int EXIT_FAILURE = 1;
    private static final String CRASH_TIMER_THREAD = "crash-after-seconds";
    // Environments whose data must never live only in memory.
    private static final Set<String> NEED_A_DATABASE = Set.of("staging", "production");

    private Main() {
    }

    /**
     * Entry point.
     *
     * @param args unused: the configuration comes from environment variables
     */
    public static void main(String[] args) {
        try {
            AppConfig config = AppConfig.fromEnvironment(System.getenv());
            if (config.crashOnStart()) {
                Log.error("CRASH_ON_START=true, failing on purpose");
                System.exit(EXIT_FAILURE);
            }
            String version = version();
            ServiceServer server = start(config, version, store(config, System.getenv()));
            Runtime.getRuntime().addShutdownHook(new Thread(server::stop, "shutdown"));
            Log.info(SERVICE + " " + version + " (" + config.appEnv() + ") listening on " + server.address());
            if (config.crashAfterSeconds() != AppConfig.NEVER_CRASH) {
                scheduleCrash(config.crashAfterSeconds());
            }
        } catch (IllegalArgumentException | IOException e) {
            Log.error("cannot start: " + e.getMessage());
            System.exit(EXIT_FAILURE);
        }
    }

    /**
     * The accounts table when the platform gives a database (DB_* variables), else memory, which
     * staging and production refuse.
     *
     * @param config runtime configuration
     * @param env environment variables
     * @return the store
     * @throws IOException when the password file cannot be read
     */
    static AccountStore store(AppConfig config, Map<String, String> env) throws IOException {
        Database.Settings settings = Database.Settings.fromEnvironment(env);
        if (settings == null) {
            if (NEED_A_DATABASE.contains(config.appEnv())) {
                throw new IllegalArgumentException(
                    "DB_HOST is not set: " + config.appEnv() + " never serves accounts only in memory");
            }
            Log.warning("DB_HOST is not set: serving the two demo accounts from memory");
            return MemoryAccountStore.withDemoData();
        }
        return new JdbcAccountStore(new Database(settings));
    }

    /**
     * Wires the handlers and starts the server.
     *
     * @param config runtime configuration
     * @param version version reported by /health
     * @param store where accounts are read from
     * @return the running server
     * @throws IOException if the address cannot be bound
     */
    static ServiceServer start(AppConfig config, String version, AccountStore store) throws IOException {
        Map<String, HttpHandler> routes = Map.of(
            "/", new InfoHandler(SERVICE, version, config.appEnv(), SUMMARY, ENDPOINTS, store::ready),
            AccountsHandler.PATH, new AccountsHandler(store));
        return ServiceServer.start(config, routes);
    }

    /**
     * Demo flag {@code CRASH_AFTER_SECONDS}: once the delay has passed, reports the failure and
     * ends the JVM with an error, although the service has been running and healthy until then.
     *
     * @param seconds delay after which the service fails
     */
    private static void scheduleCrash(int seconds) {
        Timer timer = new Timer(CRASH_TIMER_THREAD, true);
        timer.schedule(new TimerTask() {
            @Override
            public void run() {
                Log.error("CRASH_AFTER_SECONDS=" + seconds + ", failing on purpose");
                System.exit(EXIT_FAILURE);
            }
        }, TimeUnit.SECONDS.toMillis(seconds));
    }

    private static String version() {
        String version = Main.class.getPackage().getImplementationVersion();
        return version == null ? "unknown" : version;
    }
}
