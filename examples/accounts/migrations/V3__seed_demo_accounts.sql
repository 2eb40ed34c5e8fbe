-- The two demo accounts (the IBAN standard's example numbers); the service lists them read-only.
INSERT INTO accounts (iban, owner_name, currency, balance, status) VALUES
    ('DE89370400440532013000', 'Erika Mustermann', 'EUR', 1250.00, 'ACTIVE'),
    ('GB82WEST12345698765432', 'John Smith', 'GBP', 310.45, 'ACTIVE');
