-- Payments accepted by the payments service (MySQL 5.7).
CREATE TABLE payments (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    amount     DECIMAL(19, 2)  NOT NULL,
    currency   CHAR(3)         NOT NULL,
    reference  VARCHAR(140)    NOT NULL,
    status     VARCHAR(16)     NOT NULL DEFAULT 'ACCEPTED',
    created_at TIMESTAMP       NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    KEY idx_payments_status_created_at (status, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
