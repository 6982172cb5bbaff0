DROP TABLE odoo_accounts;
DROP TABLE odoo_companies;
DROP TABLE odoo_databases;
DROP TABLE registration_secrets;
