-- Customer accounts (MySQL 5.7).
CREATE TABLE accounts (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    iban       VARCHAR(34)     NOT NULL,
    owner_name VARCHAR(140)    NOT NULL,
    currency   CHAR(3)         NOT NULL,
    balance    DECIMAL(19, 2)  NOT NULL DEFAULT 0.00,
    created_at TIMESTAMP       NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY uk_accounts_iban (iban)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
