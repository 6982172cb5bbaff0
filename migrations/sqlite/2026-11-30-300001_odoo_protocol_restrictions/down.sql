ALTER TABLE odoo_accounts DROP COLUMN restricted_since;
ALTER TABLE odoo_databases DROP COLUMN protocol;
