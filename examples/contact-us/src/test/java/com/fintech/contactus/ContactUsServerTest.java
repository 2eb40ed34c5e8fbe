package com.fintech.contactus;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpRequest.BodyPublishers;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandlers;
import java.time.Clock;
import java.time.Duration;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.Test;

public class ContactUsServerTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(5);
    private static final HttpClient CLIENT =
        HttpClient.newBuilder().connectTimeout(TIMEOUT).build();

    private static ServiceServer server;

    @BeforeClass
    public static void startServer() throws IOException {
        server = Main.start(new AppConfig(0, "127.0.0.1", "ci", false, AppConfig.NEVER_CRASH), "1.0.0-test",
            new MemoryMessageStore(Clock.systemUTC()));
    }

    @AfterClass
    public static void stopServer() {
        server.stop();
    }

    @Test
    public void healthReportsServiceVersionAndEnvironment() throws Exception {
        HttpResponse<String> response = send(HttpRequest.newBuilder(uri("/health")).GET());

        assertEquals(200, response.statusCode());
        assertEquals("{\"status\":\"UP\",\"service\":\"contact-us\","
            + "\"version\":\"1.0.0-test\",\"env\":\"ci\"}", response.body());
        String contentType = response.headers().firstValue("Content-Type").orElse("");
        assertTrue(contentType, contentType.startsWith("application/json"));
    }

    @Test
    public void postedMessagesAreListed() throws Exception {
        String body = "{\"name\":\"Ann\",\"email\":\"ann@example.com\",\"message\":\"Call me\"}";
        HttpResponse<String> created = send(HttpRequest.newBuilder(uri("/messages"))
            .header("Content-Type", "application/json")
            .POST(BodyPublishers.ofString(body)));
        HttpResponse<String> listed = send(HttpRequest.newBuilder(uri("/messages")).GET());

        assertEquals(201, created.statusCode());
        assertTrue(created.body(),
            created.body().startsWith("{\"id\":1,\"name\":\"Ann\",\"email\":\"ann@example.com\""));
        assertEquals(200, listed.statusCode());
        assertEquals("[" + created.body() + "]", listed.body());
    }

    @Test
    public void invalidRequestsGetClientErrors() throws Exception {
        String badEmail = "{\"name\":\"Ann\",\"email\":\"nope\",\"message\":\"x\"}";
        HttpResponse<String> rejected = send(HttpRequest.newBuilder(uri("/messages"))
            .POST(BodyPublishers.ofString(badEmail)));
        assertEquals(400, rejected.statusCode());
        assertEquals("{\"error\":\"email is not a valid address\"}", rejected.body());

        HttpResponse<String> wrongMethod = send(HttpRequest.newBuilder(uri("/health")).DELETE());
        assertEquals(405, wrongMethod.statusCode());
        assertEquals("GET", wrongMethod.headers().firstValue("Allow").orElse(""));

        assertEquals(404, send(HttpRequest.newBuilder(uri("/nothing-here")).GET()).statusCode());
    }

    private static URI uri(String path) {
        return URI.create("http://127.0.0.1:" + server.address().getPort() + path);
    }

    private static HttpResponse<String> send(HttpRequest.Builder request)
        throws IOException, InterruptedException {
        return CLIENT.send(request.timeout(TIMEOUT).build(), BodyHandlers.ofString());
    }
}
