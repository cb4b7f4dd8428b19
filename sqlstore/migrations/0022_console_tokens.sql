-- Remote console tokens (Nova's console_auth_tokens): what a console URL's
-- token lets its holder reach, until expires_at (Unix microseconds). Only
-- the token's SHA-256 is kept, so that reading the table gives no console.
CREATE TABLE console_tokens (
    token_hash TEXT PRIMARY KEY,
    server_id TEXT NOT NULL,
    host TEXT NOT NULL,
    protocol TEXT NOT NULL,
    console_type TEXT NOT NULL,
    address TEXT NOT NULL,
    secret TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_tokens_expires_at ON console_tokens (expires_at);
