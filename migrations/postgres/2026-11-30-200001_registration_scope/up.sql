-- A registration secret may be limited to listed databases: a JSON array of dbuuids,
-- NULL for any database (what every existing secret keeps).
ALTER TABLE registration_secrets ADD COLUMN dbuuids TEXT;
