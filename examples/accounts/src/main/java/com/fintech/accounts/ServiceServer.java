package com.fintech.accounts;

import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/** A started JDK HTTP server together with its worker threads. */
final class ServiceServer {

    private static final int BACKLOG = 64;
    private static final int WORKER_THREADS = 4;
    private static final int STOP_DELAY_SECONDS = 1;

    private final HttpServer server;
    private final ExecutorService workers;

    private ServiceServer(HttpServer server, ExecutorService workers) {
        this.server = server;
        this.workers = workers;
    }

    /**
     * Binds to the configured address and port and starts serving the given routes.
     *
     * @param config bind address and port
     * @param routes handler per context path
     * @return the running server
     * @throws IOException if the address cannot be bound
     */
    static ServiceServer start(AppConfig config, Map<String, HttpHandler> routes)
        throws IOException {
        InetSocketAddress address =
            new InetSocketAddress(InetAddress.getByName(config.bindAddress()), config.port());
        HttpServer server = HttpServer.create(address, BACKLOG);
        routes.forEach(server::createContext);
        ExecutorService workers = Executors.newFixedThreadPool(WORKER_THREADS);
        server.setExecutor(workers);
        server.start();
        return new ServiceServer(server, workers);
    }

    /**
     * Returns the bound address; useful when the port was 0.
     *
     * @return the local address
     */
    InetSocketAddress address() {
        return server.getAddress();
    }

    /** Stops accepting requests, waits briefly for running ones, and ends the worker threads. */
    void stop() {
        server.stop(STOP_DELAY_SECONDS);
        workers.shutdown();
    }
}
