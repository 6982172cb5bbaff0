-- The customer portal: credit packs per service, orders paid by the customer and credited
-- to the account once confirmed, payment webhook events (one row per event id, so a
-- replayed event changes nothing), and the portal's generated signing secret.

CREATE TABLE packs (
    id INTEGER PRIMARY KEY,
    service_id BIGINT NOT NULL REFERENCES services (id),
    name TEXT NOT NULL,
    -- Units of 1/10000 credit, like every amount.
    credits BIGINT NOT NULL CHECK (credits > 0),
    -- Minor units of the currency (cents), ISO 4217 code.
    price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (service_id, name)
);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    pack_id BIGINT NOT NULL REFERENCES packs (id),
    -- What was bought, as it stood when ordered (a pack may change later).
    pack_name TEXT NOT NULL,
    credits BIGINT NOT NULL CHECK (credits > 0),
    price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'paid', 'credited', 'cancelled')),
    created_at BIGINT NOT NULL,
    paid_at BIGINT,
    credited_at BIGINT,
    cancelled_at BIGINT,
    -- The lot the credits went into; set exactly when credited.
    lot_id BIGINT REFERENCES lots (id),
    -- Who confirmed the payment (operator, admin token, webhook) and their reference.
    confirmed_by TEXT,
    payment_reference TEXT,
    CHECK ((status = 'credited') = (lot_id IS NOT NULL))
);
CREATE INDEX orders_account ON orders (account_id, id);
CREATE INDEX orders_status ON orders (status, id);

CREATE TABLE payment_events (
    event_id TEXT PRIMARY KEY,
    -- SHA-256 of the signed body: the same id with another body is refused.
    body_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    received_at BIGINT NOT NULL
);

CREATE TABLE portal_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
