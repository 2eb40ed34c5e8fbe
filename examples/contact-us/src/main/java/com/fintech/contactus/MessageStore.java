package com.fintech.contactus;

import java.sql.SQLException;
import java.util.List;

/** Where messages are kept: the contact_messages table ({@link JdbcMessageStore}) or memory. */
interface MessageStore {

    /**
     * Stores a message.
     *
     * @param name the sender's name
     * @param email the sender's address
     * @param text the message
     * @return the stored message
     * @throws SQLException when the store cannot be reached
     */
    ContactMessage add(String name, String email, String text) throws SQLException;

    /**
     * All messages, oldest first.
     *
     * @return the messages
     * @throws SQLException when the store cannot be reached
     */
    List<ContactMessage> list() throws SQLException;

    /**
     * Whether the store can serve requests now (readiness).
     *
     * @return true when ready
     */
    boolean ready();
}
