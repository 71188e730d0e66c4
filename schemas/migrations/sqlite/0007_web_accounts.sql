-- Web sign-in (services/src/store/accounts.rs): accounts, sessions and failed sign-ins.
-- Times are milliseconds since 1970 (UTC). Only a session token's SHA-256 is stored.

CREATE TABLE web_accounts (
    login TEXT PRIMARY KEY,
    -- 'officer' (scope: the registry's officer key) or 'supervisor' (scope: a region code)
    role TEXT NOT NULL,
    scope TEXT NOT NULL,
    -- argon2id PHC string
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE web_sessions (
    -- hex SHA-256 of the cookie's token
    digest TEXT PRIMARY KEY,
    login TEXT NOT NULL REFERENCES web_accounts (login) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_login ON web_sessions (login);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

CREATE TABLE web_login_failures (
    login TEXT NOT NULL,
    -- the client's address, '' when unknown
    ip TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX web_login_failures_login ON web_login_failures (login, at);
CREATE INDEX web_login_failures_ip ON web_login_failures (ip, at);
