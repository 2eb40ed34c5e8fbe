-- Accounts can be frozen or closed; look-ups by owner get an index (MySQL 5.7).
ALTER TABLE accounts
    ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT 'ACTIVE' AFTER balance,
    ADD KEY idx_accounts_owner_name (owner_name);
