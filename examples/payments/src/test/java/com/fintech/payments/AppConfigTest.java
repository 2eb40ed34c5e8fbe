package com.fintech.payments;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import java.util.List;
import java.util.Map;
import org.junit.Test;

public class AppConfigTest {

    @Test
    public void readsEnvironmentWithDefaultsAndRejectsInvalidValues() {
        assertEquals(new AppConfig(8080, "127.0.0.1", "dev", false),
            AppConfig.fromEnvironment(Map.of()));
        assertEquals(new AppConfig(18081, "0.0.0.0", "ci", true),
            AppConfig.fromEnvironment(Map.of("PORT", "18081", "BIND_ADDRESS", "0.0.0.0",
                "APP_ENV", "ci", "CRASH_ON_START", "TRUE")));
        for (Map<String, String> env : List.of(
            Map.of("PORT", "http"), Map.of("PORT", "70000"), Map.of("APP_ENV", "prod"))) {
            assertThrows(env.toString(), IllegalArgumentException.class,
                () -> AppConfig.fromEnvironment(env));
        }
    }
}
