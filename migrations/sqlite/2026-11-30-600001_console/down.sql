DROP TABLE audit_log;
DROP TABLE console_sessions;
