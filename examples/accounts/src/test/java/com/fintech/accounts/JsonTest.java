package com.fintech.accounts;

import static org.junit.Assert.assertEquals;

import java.math.BigDecimal;
import java.util.List;
import org.junit.Test;

public class JsonTest {

    @Test
    public void writesEscapedTextAndExactBalances() {
        assertEquals("\"say \\\"hi\\\"\\n\\\\ \\u0001 é\"", Json.quote("say \"hi\"\n\\ \u0001 é"));
        assertEquals("{\"n\":-15,\"none\":null}",
            Json.object().add("n", -15).add("none", null).build());
        assertEquals("[]", Json.array(List.of()));

        Account account = new Account(3, "NL91ABNA0417164300", "A \"B\"", "EUR",
            new BigDecimal("0.10"), "ACTIVE");

        assertEquals("{\"id\":3,\"iban\":\"NL91ABNA0417164300\",\"ownerName\":\"A \\\"B\\\"\","
            + "\"currency\":\"EUR\",\"balance\":\"0.10\",\"status\":\"ACTIVE\"}", account.toJson());
    }
}
