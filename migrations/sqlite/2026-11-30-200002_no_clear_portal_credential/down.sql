-- The column comes back empty: what it held is not kept anywhere.
ALTER TABLE accounts ADD COLUMN token_sha1 TEXT;
