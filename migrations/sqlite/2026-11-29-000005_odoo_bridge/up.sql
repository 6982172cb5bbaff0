-- Odoo databases registered with the sidecar, and what it last read from them.

CREATE TABLE registration_secrets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE odoo_databases (
    id INTEGER PRIMARY KEY,
    dbuuid TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    db_name TEXT NOT NULL,
    login TEXT NOT NULL,
    -- The sidecar calls Odoo with it, so it cannot be hashed; scope it to a dedicated user.
    api_key TEXT NOT NULL,
    -- Hash of the token the database's addon uses to call the sidecar.
    token_hash TEXT NOT NULL UNIQUE,
    registered_at BIGINT NOT NULL,
    refreshed_at BIGINT,
    last_error TEXT
);

CREATE TABLE odoo_companies (
    database_id BIGINT NOT NULL REFERENCES odoo_databases (id),
    company_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (database_id, company_id)
);

CREATE TABLE odoo_accounts (
    database_id BIGINT NOT NULL REFERENCES odoo_databases (id),
    iap_account_id BIGINT NOT NULL,
    service_name TEXT NOT NULL,
    -- Same hash as accounts.token_hash: joins without keeping the token.
    token_hash TEXT NOT NULL,
    -- JSON list of res.company ids; empty: shared by all companies.
    company_ids TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (database_id, iap_account_id)
);
CREATE INDEX odoo_accounts_token ON odoo_accounts (token_hash);
