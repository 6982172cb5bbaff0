-- Portal sessions that logged out before their cookie expired. A session cookie is signed,
-- not stored, so logging out records its nonce here until the cookie would have expired;
-- a cookie whose nonce is listed opens nothing (a captured cookie dies with the logout).
CREATE TABLE portal_revoked_sessions (
    nonce TEXT PRIMARY KEY,
    -- Unix seconds: the cookie's own expiry; the row is useless after it.
    expires_at BIGINT NOT NULL
);
