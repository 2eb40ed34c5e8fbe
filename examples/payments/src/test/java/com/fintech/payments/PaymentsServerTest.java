package com.fintech.payments;

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

public class PaymentsServerTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(5);
    private static final HttpClient CLIENT =
        HttpClient.newBuilder().connectTimeout(TIMEOUT).build();

    private static ServiceServer server;

    @BeforeClass
    public static void startServer() throws IOException {
        server = Main.start(new AppConfig(0, "127.0.0.1", "staging", false, AppConfig.NEVER_CRASH), "1.0.0-7",
            new MemoryPaymentStore(Clock.systemUTC()));
    }

    @AfterClass
    public static void stopServer() {
        server.stop();
    }

    @Test
    public void healthReportsServiceVersionAndEnvironment() throws Exception {
        HttpResponse<String> response = send(HttpRequest.newBuilder(uri("/health")).GET());

        assertEquals(200, response.statusCode());
        assertEquals("{\"status\":\"UP\",\"service\":\"payments\","
            + "\"version\":\"1.0.0-7\",\"env\":\"staging\"}", response.body());
    }

    @Test
    public void acceptedPaymentsAreListedWithExactAmounts() throws Exception {
        String body = "{\"amount\": 12.5, \"currency\": \"EUR\", \"reference\": \"INV-2024-001\"}";
        HttpResponse<String> created = send(HttpRequest.newBuilder(uri("/payments"))
            .header("Content-Type", "application/json")
            .POST(BodyPublishers.ofString(body)));

        assertEquals(201, created.statusCode());
        assertTrue(created.body(), created.body().contains("\"amount\":\"12.50\","
            + "\"currency\":\"EUR\",\"reference\":\"INV-2024-001\",\"status\":\"ACCEPTED\""));
        HttpResponse<String> listed = send(HttpRequest.newBuilder(uri("/payments")).GET());
        assertTrue(listed.body(), listed.body().contains(created.body()));
    }

    @Test
    public void aRetriedPaymentWithItsIdempotencyKeyIsAcceptedOnce() throws Exception {
        String body = "{\"amount\": \"7.00\", \"currency\": \"GBP\", \"reference\": \"RETRY-1\"}";
        HttpResponse<String> first = send(HttpRequest.newBuilder(uri("/payments"))
            .header("Idempotency-Key", "key-1").POST(BodyPublishers.ofString(body)));
        HttpResponse<String> again = send(HttpRequest.newBuilder(uri("/payments"))
            .header("Idempotency-Key", "key-1").POST(BodyPublishers.ofString(body)));
        HttpResponse<String> other = send(HttpRequest.newBuilder(uri("/payments"))
            .header("Idempotency-Key", "key-1")
            .POST(BodyPublishers.ofString(body.replace("7.00", "8.00"))));

        assertEquals(201, first.statusCode());
        assertEquals(200, again.statusCode());
        assertEquals(first.body(), again.body());
        assertEquals(409, other.statusCode());
        String listed = send(HttpRequest.newBuilder(uri("/payments")).GET()).body();
        assertEquals(1, listed.split("RETRY-1", -1).length - 1);
    }

    @Test
    public void livenessAnswersOnItsOwnPath() throws Exception {
        assertEquals(200, send(HttpRequest.newBuilder(uri("/live")).GET()).statusCode());
    }

    @Test
    public void invalidPaymentsAreRejected() throws Exception {
        String[] invalid = {
            "{\"amount\":\"-1\",\"currency\":\"EUR\",\"reference\":\"r\"}",
            "{\"amount\":\"0.001\",\"currency\":\"EUR\",\"reference\":\"r\"}",
            "{\"amount\":\"1e30\",\"currency\":\"EUR\",\"reference\":\"r\"}",
            "{\"amount\":\"10\",\"currency\":\"euro\",\"reference\":\"r\"}",
            "{\"amount\":\"10\",\"currency\":\"EUR\"}",
            "{\"amount\":{\"value\":10},\"currency\":\"EUR\",\"reference\":\"r\"}",
        };
        for (String body : invalid) {
            HttpResponse<String> response = send(HttpRequest.newBuilder(uri("/payments"))
                .POST(BodyPublishers.ofString(body)));
            assertEquals(body, 400, response.statusCode());
        }
    }

    private static URI uri(String path) {
        return URI.create("http://127.0.0.1:" + server.address().getPort() + path);
    }

    private static HttpResponse<String> send(HttpRequest.Builder request)
        throws IOException, InterruptedException {
        return CLIENT.send(request.timeout(TIMEOUT).build(), BodyHandlers.ofString());
    }
}
