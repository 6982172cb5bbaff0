ALTER TABLE registration_secrets DROP COLUMN dbuuids;
