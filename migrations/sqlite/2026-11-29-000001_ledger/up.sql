-- The credit ledger. Amounts are integers in units of 1/10000 credit; times are
-- microseconds since the Unix epoch; "never" is 9223372036854775807.

CREATE TABLE services (
    id INTEGER PRIMARY KEY,
    technical_name TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    unit_name TEXT NOT NULL,
    integer_balance BOOLEAN NOT NULL DEFAULT FALSE,
    key_hash TEXT NOT NULL UNIQUE,
    trial_credits BIGINT NOT NULL DEFAULT 0 CHECK (trial_credits >= 0),
    trial_days INTEGER NOT NULL DEFAULT 0 CHECK (trial_days >= 0),
    created_at BIGINT NOT NULL
);

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    service_id BIGINT NOT NULL REFERENCES services (id),
    token_hash TEXT NOT NULL,
    token_hint TEXT NOT NULL,
    dbuuid TEXT,
    state TEXT NOT NULL DEFAULT 'registered'
        CHECK (state IN ('registered', 'unregistered', 'banned')),
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    balance BIGINT NOT NULL DEFAULT 0,
    reserved BIGINT NOT NULL DEFAULT 0,
    last_seq BIGINT NOT NULL DEFAULT 0,
    lock_version BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (service_id, token_hash),
    -- The money rules, enforced by the database whatever the code does.
    CHECK (reserved >= 0),
    CHECK (balance >= reserved),
    CHECK (balance <= 10000000000000000)
);
CREATE INDEX accounts_dbuuid ON accounts (dbuuid);

CREATE TABLE lots (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    remaining BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('grant', 'topup', 'trial')),
    reference TEXT,
    created_at BIGINT NOT NULL,
    CHECK (remaining >= 0 AND remaining <= amount)
);
CREATE INDEX lots_drawable ON lots (account_id, expires_at, id) WHERE remaining > 0;

CREATE TABLE holds (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    token_hash TEXT NOT NULL UNIQUE,
    amount BIGINT NOT NULL CHECK (amount >= 0),
    status TEXT NOT NULL CHECK (status IN ('open', 'captured', 'cancelled', 'expired')),
    captured BIGINT CHECK (captured >= 0),
    description TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX holds_open ON holds (account_id, expires_at) WHERE status = 'open';
CREATE INDEX holds_open_expiry ON holds (expires_at) WHERE status = 'open';

CREATE TABLE hold_allocations (
    hold_id BIGINT NOT NULL REFERENCES holds (id),
    lot_id BIGINT NOT NULL REFERENCES lots (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    PRIMARY KEY (hold_id, lot_id)
);

CREATE TABLE journal (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('grant', 'topup', 'trial', 'capture', 'expiry')),
    amount BIGINT NOT NULL,
    balance_after BIGINT NOT NULL CHECK (balance_after >= 0),
    hold_id BIGINT REFERENCES holds (id),
    lot_id BIGINT REFERENCES lots (id),
    description TEXT,
    effective_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    -- One writer per account at a time: two entries can never claim the same place.
    UNIQUE (account_id, seq)
);
CREATE INDEX lots_expiring ON lots (expires_at) WHERE remaining > 0;

CREATE TABLE admin_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

-- The journal is append-only.
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
BEGIN
    SELECT RAISE(ABORT, 'journal is append-only');
END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
BEGIN
    SELECT RAISE(ABORT, 'journal is append-only');
END;
