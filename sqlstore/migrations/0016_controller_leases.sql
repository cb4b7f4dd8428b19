-- The controllers sharing a store: each holds a lease, which it renews
-- while it runs (expires_at in Unix microseconds); those whose lease has
-- not expired are live, and share the work among themselves.
CREATE TABLE controller_leases (
    controller TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
