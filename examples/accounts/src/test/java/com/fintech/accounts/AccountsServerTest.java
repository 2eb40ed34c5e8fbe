package com.fintech.accounts;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpRequest.BodyPublishers;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandlers;
import java.time.Duration;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.Test;

public class AccountsServerTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(5);
    private static final HttpClient CLIENT =
        HttpClient.newBuilder().connectTimeout(TIMEOUT).build();

    private static ServiceServer server;

    @BeforeClass
    public static void startServer() throws IOException {
        server = Main.start(new AppConfig(0, "127.0.0.1", "production", false, AppConfig.NEVER_CRASH), "2.3.4",
            MemoryAccountStore.withDemoData());
    }

    @AfterClass
    public static void stopServer() {
        server.stop();
    }

    @Test
    public void healthReportsServiceVersionAndEnvironment() throws Exception {
        HttpResponse<String> response = send(HttpRequest.newBuilder(uri("/health")).GET());

        assertEquals(200, response.statusCode());
        assertEquals("{\"status\":\"UP\",\"service\":\"accounts\","
            + "\"version\":\"2.3.4\",\"env\":\"production\"}", response.body());
    }

    @Test
    public void listsTheDemoAccountsReadOnly() throws Exception {
        HttpResponse<String> listed = send(HttpRequest.newBuilder(uri("/accounts")).GET());
        assertEquals(200, listed.statusCode());
        assertTrue(listed.body(),
            listed.body().startsWith("[{\"id\":1,\"iban\":\"DE89370400440532013000\""));
        assertTrue(listed.body(), listed.body().contains("\"balance\":\"310.45\""));

        HttpResponse<String> posted = send(HttpRequest.newBuilder(uri("/accounts"))
            .POST(BodyPublishers.ofString("{}")));
        assertEquals(405, posted.statusCode());
        assertEquals(404, send(HttpRequest.newBuilder(uri("/accounts/1")).GET()).statusCode());
    }

    private static URI uri(String path) {
        return URI.create("http://127.0.0.1:" + server.address().getPort() + path);
    }

    private static HttpResponse<String> send(HttpRequest.Builder request)
        throws IOException, InterruptedException {
        return CLIENT.send(request.timeout(TIMEOUT).build(), BodyHandlers.ofString());
    }
}
