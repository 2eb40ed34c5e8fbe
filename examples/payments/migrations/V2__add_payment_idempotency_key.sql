-- A client's Idempotency-Key: a retried POST returns the payment the first one created (MySQL 5.7).
-- Nullable and added with its unique index: the version serving while this runs does not know it (expand).
ALTER TABLE payments
    ADD COLUMN idempotency_key VARCHAR(64) NULL AFTER reference,
    ADD UNIQUE KEY uk_payments_idempotency_key (idempotency_key);
