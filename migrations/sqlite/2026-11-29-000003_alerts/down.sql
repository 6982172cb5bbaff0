DROP TABLE alert_outbox;
ALTER TABLE accounts DROP COLUMN token_sha1;
ALTER TABLE accounts DROP COLUMN alert_armed;
