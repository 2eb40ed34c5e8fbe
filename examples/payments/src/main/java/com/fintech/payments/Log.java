package com.fintech.payments;

import java.io.PrintStream;
import java.time.Instant;

/**
 * One JSON object per line on standard output, in Cloud Logging's structured format:
 * {@code severity}, {@code message}, {@code time} and, for a request that carried
 * {@code X-Cloud-Trace-Context}, {@code logging.googleapis.com/trace} and {@code spanId}.
 */
final class Log {

    private static final PrintStream OUT = System.out;
    private static final String PROJECT = projectId();

    private Log() {
    }

    static void info(String message) {
        write("INFO", message, null);
    }

    static void warning(String message) {
        write("WARNING", message, null);
    }

    static void error(String message) {
        write("ERROR", message, null);
    }

    /**
     * Writes one entry, with the trace of a request when {@code traceContext} is the value of its
     * {@code X-Cloud-Trace-Context} header ({@code TRACE_ID/SPAN_ID;o=OPTIONS}).
     *
     * @param severity Cloud Logging severity
     * @param message the message
     * @param traceContext the header's value, or null
     */
    static void write(String severity, String message, String traceContext) {
        Json.ObjectBuilder entry = Json.object()
            .add("severity", severity)
            .add("message", message)
            .add("time", Instant.now().toString())
            .add("service", Main.SERVICE);
        if (traceContext != null && !traceContext.isBlank()) {
            String[] traceAndRest = traceContext.trim().split("/", 2);
            entry.add("logging.googleapis.com/trace", "projects/" + PROJECT + "/traces/" + traceAndRest[0]);
            if (traceAndRest.length > 1) {
                String[] spanAndOptions = traceAndRest[1].split(";", 2);
                entry.add("logging.googleapis.com/spanId", spanAndOptions[0]);
                if (spanAndOptions.length > 1) {
                    entry.addRaw("logging.googleapis.com/trace_sampled",
                        Boolean.toString(spanAndOptions[1].contains("o=1")));
                }
            }
        }
        synchronized (OUT) {
            OUT.println(entry.build());
            OUT.flush();
        }
    }

    private static String projectId() {
        String project = System.getenv("GOOGLE_CLOUD_PROJECT");
        return project == null || project.isBlank() ? "local" : project.trim();
    }
}
