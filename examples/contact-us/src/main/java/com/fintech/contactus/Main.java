package com.fintech.contactus;

import com.sun.net.httpserver.HttpHandler;
import java.io.IOException;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Timer;
import java.util.TimerTask;
import java.util.concurrent.TimeUnit;

/** Starts the contact-us service with configuration from environment variables. */
public final class Main {

    static final String SERVICE = "contact-us";

    private static final String SUMMARY =
        "Receives messages sent through the website's contact form.";
    private static final List<String> ENDPOINTS =
        List.of("GET /health", "GET /messages", "POST /messages");
    private static final int EXIT_FAILURE = 1;
    private static final String CRASH_TIMER_THREAD = "crash-after-seconds";

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
                System.err.println(SERVICE + ": CRASH_ON_START=true, failing on purpose");
                System.exit(EXIT_FAILURE);
            }
            String version = version();
            ServiceServer server = start(config, version);
            Runtime.getRuntime().addShutdownHook(new Thread(server::stop, "shutdown"));
            System.out.printf("%s %s (%s) listening on %s%n",
                SERVICE, version, config.appEnv(), server.address());
            if (config.crashAfterSeconds() != AppConfig.NEVER_CRASH) {
                scheduleCrash(config.crashAfterSeconds());
            }
        } catch (IllegalArgumentException | IOException e) {
            System.err.println(SERVICE + ": cannot start: " + e.getMessage());
            System.exit(EXIT_FAILURE);
        }
    }

    /**
     * Wires the handlers and starts the server.
     *
     * @param config runtime configuration
     * @param version version reported by /health
     * @return the running server
     * @throws IOException if the address cannot be bound
     */
    static ServiceServer start(AppConfig config, String version) throws IOException {
        Map<String, HttpHandler> routes = Map.of(
            "/", new InfoHandler(SERVICE, version, config.appEnv(), SUMMARY, ENDPOINTS),
            MessagesHandler.PATH, new MessagesHandler(new MessageStore(Clock.systemUTC())));
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
                System.err.println(
                    SERVICE + ": CRASH_AFTER_SECONDS=" + seconds + ", failing on purpose");
                System.exit(EXIT_FAILURE);
            }
        }, TimeUnit.SECONDS.toMillis(seconds));
    }

    private static String version() {
        String version = Main.class.getPackage().getImplementationVersion();
        return version == null ? "unknown" : version;
    }
}
