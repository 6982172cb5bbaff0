-- Low-credit alerts: an outbox written in the ledger transaction that crosses the
-- threshold, one row per recipient, drained by the alert worker.

-- Cleared by a crossing, set again by a top-up that lifts the account back over.
ALTER TABLE accounts ADD COLUMN alert_armed BOOLEAN NOT NULL DEFAULT TRUE;
-- sha1(token without "+suffix"): what Odoo 19 puts in buy-credits links (hashed=1).
ALTER TABLE accounts ADD COLUMN token_sha1 TEXT;

CREATE TABLE alert_outbox (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    recipient TEXT NOT NULL,
    lang_code TEXT,
    -- Figures at the crossing, in units of 1/10000 credit.
    available BIGINT NOT NULL,
    threshold BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- A worker that claimed the row owns it until then (a crashed worker's claim lapses).
    claimed_until BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at BIGINT
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_outbox_account ON alert_outbox (account_id);
