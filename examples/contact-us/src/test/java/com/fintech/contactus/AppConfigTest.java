package com.fintech.contactus;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.Test;

public class AppConfigTest {

    @Test
    public void readsEnvironmentWithDefaultsAndRejectsInvalidValues() {
        assertEquals(new AppConfig(8080, "127.0.0.1", "dev", false, AppConfig.NEVER_CRASH),
            AppConfig.fromEnvironment(Map.of()));
        assertEquals(new AppConfig(18081, "0.0.0.0", "ci", true, 45),
            AppConfig.fromEnvironment(Map.of("PORT", "18081", "BIND_ADDRESS", "0.0.0.0",
                "APP_ENV", "ci", "CRASH_ON_START", "TRUE", "CRASH_AFTER_SECONDS", "45")));
        for (Map<String, String> env : List.of(
            Map.of("PORT", "http"), Map.of("PORT", "70000"), Map.of("APP_ENV", "prod"))) {
            assertThrows(env.toString(), IllegalArgumentException.class,
                () -> AppConfig.fromEnvironment(env));
        }
    }

    @Test
    public void crashAfterSecondsAbsentOrEmptyMeansNever() {
        assertEquals(AppConfig.NEVER_CRASH,
            AppConfig.fromEnvironment(Map.of()).crashAfterSeconds());
        assertEquals(AppConfig.NEVER_CRASH, crashAfterSeconds(""));
        assertEquals(AppConfig.NEVER_CRASH, crashAfterSeconds("  "));
    }

    @Test
    public void crashAfterSecondsReadsPositiveSeconds() {
        assertEquals(1, crashAfterSeconds("1"));
        assertEquals(30, crashAfterSeconds("30"));
        assertEquals(5, crashAfterSeconds(" 5 "));
    }

    @Test
    public void crashAfterSecondsRejectsAnythingElse() {
        for (String value : List.of("0", "-3", "soon", "1.5", "5s", "99999999999")) {
            IllegalArgumentException e = assertThrows(value, IllegalArgumentException.class,
                () -> crashAfterSeconds(value));
            assertTrue(e.getMessage(), e.getMessage().startsWith("CRASH_AFTER_SECONDS must be"));
            assertTrue(e.getMessage(), e.getMessage().endsWith("got '" + value + "'"));
        }
    }

    private static int crashAfterSeconds(String value) {
        return AppConfig.fromEnvironment(Map.of("CRASH_AFTER_SECONDS", value)).crashAfterSeconds();
    }
}
