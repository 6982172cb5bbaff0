-- The operator's console: server-side sessions opened with an admin token, and the audit
-- log of what operators did. New tables only: existing data is untouched.

-- A session is a random secret in an HttpOnly cookie; only its SHA-256 is stored, so
-- a copy of the database opens nothing. A session counts only while it has not ended
-- (sign-out), has not expired and its admin token is not revoked.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    token_id BIGINT NOT NULL REFERENCES admin_tokens (id),
    -- Random per session: the CSRF tokens of its forms derive from it.
    csrf_nonce TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX console_sessions_token ON console_sessions (token_id);

-- One line per operator action (console or admin API): who, what, on what, when.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
