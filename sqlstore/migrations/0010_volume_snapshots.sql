-- Volume snapshots: a volume's data at a moment, kept by its backend.
-- metadata: JSON object; progress: what a service taking it reported,
-- such as "80%", '' for none; reason: why it is in error.
CREATE TABLE volume_snapshots (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    volume_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    size_gb     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    progress    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX volume_snapshots_project ON volume_snapshots (project_id);
CREATE INDEX volume_snapshots_volume ON volume_snapshots (volume_id);
