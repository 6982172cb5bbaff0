DROP INDEX trial_grants_one_per_account;
ALTER TABLE trial_grants DROP COLUMN legacy_extra;
