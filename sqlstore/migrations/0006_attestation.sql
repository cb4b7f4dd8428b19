-- Attestation: the white-lists hosts are attested against, each host's
-- TPM identity and attestation record, the EKs operators approved, and the
-- hosts' attestation events. Times are Unix microseconds (0 for "never");
-- JSON is TEXT; bytes are BYTEA, which PostgreSQL knows and SQLite takes
-- as a column that keeps blobs as they are.

CREATE TABLE whitelists (
    name           TEXT PRIMARY KEY,
    files          TEXT NOT NULL, -- JSON: path -> ["sha256:HEX", ...]
    exclude        TEXT NOT NULL, -- JSON array of patterns
    boot_aggregate TEXT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- host is a compute host's name but no foreign key: a TPM registers
-- before its compute host does, and the record outlives the host's row.
-- version moves on at each write.
CREATE TABLE host_attestations (
    host              TEXT PRIMARY KEY,
    cid               TEXT NOT NULL,
    registered_at     BIGINT NOT NULL,
    ek_cert           BYTEA NOT NULL,
    ak_public         BYTEA NOT NULL,
    credential_key    BYTEA NOT NULL,
    mode              TEXT NOT NULL,
    verdict_state     TEXT NOT NULL,
    verdict_reasons   TEXT NOT NULL, -- JSON array of sentences
    verdict_whitelist TEXT NOT NULL,
    verdict_at        BIGINT NOT NULL,
    failing_since     BIGINT NOT NULL,
    revoked           BOOLEAN NOT NULL,
    checkpoint        BYTEA NOT NULL,
    version           BIGINT NOT NULL
);

CREATE TABLE approved_eks (
    fingerprint TEXT PRIMARY KEY, -- SHA-256 of the EK certificate, hex
    comment     TEXT NOT NULL,
    approved_at BIGINT NOT NULL
);

-- A host's events in the order they were added: seq counts them per host,
-- from attestation_event_seqs, whose row each insert moves on (and so
-- locks), as SQLite and PostgreSQL share no autoincrement.
CREATE TABLE attestation_events (
    host    TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    at      BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (host, seq)
);
CREATE INDEX attestation_events_host_at ON attestation_events (host, at, seq);

CREATE TABLE attestation_event_seqs (
    host     TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
