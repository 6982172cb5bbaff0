-- What Odoo's IAP protocol adds: low-credit alert settings per account, which databases
-- may use a service, and trial credits given once per (service, database).

ALTER TABLE accounts ADD COLUMN warning_threshold BIGINT NOT NULL DEFAULT 0
    CHECK (warning_threshold >= 0);
-- Odoo 17's "Warn me"; 18 and later have no such switch (a threshold of 0 means off).
ALTER TABLE accounts ADD COLUMN warn_me BOOLEAN NOT NULL DEFAULT TRUE;
-- JSON list of {"email": ..., "lang_code": ...}.
ALTER TABLE accounts ADD COLUMN warning_emails TEXT NOT NULL DEFAULT '[]';

ALTER TABLE services ADD COLUMN open_to_all BOOLEAN NOT NULL DEFAULT TRUE;

CREATE TABLE service_databases (
    service_id BIGINT NOT NULL REFERENCES services (id),
    dbuuid TEXT NOT NULL,
    PRIMARY KEY (service_id, dbuuid)
);

CREATE TABLE trial_grants (
    service_id BIGINT NOT NULL REFERENCES services (id),
    dbuuid TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (service_id, dbuuid)
);
