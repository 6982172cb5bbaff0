DROP TABLE idempotency_keys;
DROP TABLE admin_tokens;
DROP TABLE journal;
DROP TABLE hold_allocations;
DROP TABLE holds;
DROP TABLE lots;
DROP TABLE accounts;
DROP TABLE services;
