-- How the sidecar talks to each registered Odoo database: 'json2' (Odoo 19's
-- /json/2/<model>/<method> with a bearer API key) or 'jsonrpc' (/jsonrpc, every series).
-- Databases registered before this column existed were read over /jsonrpc.
ALTER TABLE odoo_databases ADD COLUMN protocol TEXT NOT NULL DEFAULT 'jsonrpc';

-- Since when the sidecar has seen an account restricted to its current companies:
-- per-company consumption counts only captures recorded from then on. Rows already
-- restricted get the database's last successful read, the earliest moment the sidecar
-- can vouch for the restriction.
ALTER TABLE odoo_accounts ADD COLUMN restricted_since BIGINT;
UPDATE odoo_accounts
SET restricted_since = (
    SELECT COALESCE(d.refreshed_at, d.registered_at)
    FROM odoo_databases d
    WHERE d.id = odoo_accounts.database_id
)
WHERE company_ids <> '[]';
