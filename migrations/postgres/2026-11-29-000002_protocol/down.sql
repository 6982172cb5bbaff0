DROP TABLE trial_grants;
DROP TABLE service_databases;
ALTER TABLE services DROP COLUMN open_to_all;
ALTER TABLE accounts DROP COLUMN warning_emails;
ALTER TABLE accounts DROP COLUMN warn_me;
ALTER TABLE accounts DROP COLUMN warning_threshold;
