-- sha1(token) opens an account's portal (Odoo's `hashed=1` links), so it is not kept.
-- Accounts are found by token_hash, SHA-256 of that sha1, which every row has held
-- since the first migration: nothing else needs converting. Alert e-mails link to the
-- portal with a signed link instead.
-- Dropping a column rewrites the table; pages freed meanwhile are zeroed, so the old
-- values do not linger in the file either.
PRAGMA secure_delete = ON;
ALTER TABLE accounts DROP COLUMN token_sha1;
PRAGMA secure_delete = OFF;
