-- Odoo's SMS through the operator's gateway (README, "SMS").

-- One row per message Odoo asked us to send (and per registration code we send): the
-- outbox the SMS worker drains. Odoo's uuid makes a send call safe to repeat: the same
-- (account, uuid) is answered from here and never charged or sent twice.
CREATE TABLE sms_messages (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    -- 'odoo': a message of Odoo's send call; 'verification': a registration code.
    kind TEXT NOT NULL CHECK (kind IN ('odoo', 'verification')),
    uuid TEXT NOT NULL,
    number TEXT NOT NULL,
    content TEXT NOT NULL,
    encoding TEXT NOT NULL CHECK (encoding IN ('gsm7', 'ucs2')),
    segments INTEGER NOT NULL,
    -- The country calling code that priced it ('*' for the catch-all price).
    country TEXT NOT NULL,
    -- Units of 1/10000 credit, all segments.
    price BIGINT NOT NULL,
    -- The hold paying for it (transaction_key of its token); none for a free message.
    hold_key TEXT,
    sender TEXT,
    dbuuid TEXT,
    -- Where Odoo wants its delivery reports (Odoo's /sms/status).
    webhook_url TEXT,
    -- queued: waiting for the gateway (credits held); submitted: the gateway took it
    -- (credits consumed); delivered / failed: its last word.
    status TEXT NOT NULL CHECK (status IN ('queued', 'submitted', 'delivered', 'failed')),
    failure TEXT,
    refunded BOOLEAN NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    give_up_at BIGINT NOT NULL,
    last_error TEXT,
    gateway TEXT,
    gateway_ref TEXT,
    created_at BIGINT NOT NULL,
    submitted_at BIGINT,
    done_at BIGINT,
    UNIQUE (account_id, uuid)
);
CREATE INDEX sms_messages_due ON sms_messages (next_attempt_at) WHERE status = 'queued';
CREATE INDEX sms_messages_ref ON sms_messages (gateway, gateway_ref);
CREATE INDEX sms_messages_account_day ON sms_messages (account_id, created_at);

-- Delivery reports owed to Odoo, sent in id order per webhook URL.
CREATE TABLE sms_reports (
    id INTEGER PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES sms_messages (id),
    webhook_url TEXT NOT NULL,
    dbuuid TEXT,
    uuid TEXT NOT NULL,
    sms_status TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dropped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX sms_reports_due ON sms_reports (webhook_url, id) WHERE status = 'pending';

-- Odoo's SMS account registration (18/19): phone, code, sender name.
CREATE TABLE sms_registrations (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id),
    phone TEXT,
    -- sha256 of the code sent; the code itself is never stored.
    code_hash TEXT,
    code_expires_at BIGINT,
    -- Wrong codes since the last code was sent.
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    -- Codes sent, and the first of the current hour's (a bound on codes per hour).
    codes_sent INTEGER NOT NULL DEFAULT 0,
    codes_window_start BIGINT NOT NULL DEFAULT 0,
    verified_at BIGINT,
    sender_name TEXT,
    updated_at BIGINT NOT NULL
);
