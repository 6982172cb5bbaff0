DROP TABLE portal_revoked_sessions;
