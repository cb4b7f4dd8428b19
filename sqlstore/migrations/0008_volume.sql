-- Block storage: volume types, volumes and volume quotas, and the volume
-- backends storage hosts run. Times are Unix microseconds; JSON is TEXT.

-- storage: JSON array of the volume backends a host's agent says it runs,
-- with their capacity.
ALTER TABLE hosts ADD COLUMN storage TEXT NOT NULL DEFAULT '[]';

-- extra_specs: JSON object; volume_backend_name among them chooses the
-- backend.
CREATE TABLE volume_types (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    is_public   BOOLEAN NOT NULL,
    extra_specs TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Cinder's default type, which volumes that name none get.
INSERT INTO volume_types (id, name, description, is_public, extra_specs, created_at, updated_at)
VALUES ('9d5cff2f-827b-4031-8ee6-28d0b0c61bd3', '__DEFAULT__', 'Default Volume Type', TRUE, '{}', 0, 0);

-- image_id, snapshot_id, source_volume_id: what the volume was made from,
-- '' for none; metadata, image_metadata: JSON objects; host: where it
-- lives, 'host@backend#pool', '' until a backend has it; reason: why it
-- is in error.
CREATE TABLE volumes (
    id                TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL,
    size_gb           INTEGER NOT NULL,
    status            TEXT NOT NULL,
    type_id           TEXT NOT NULL REFERENCES volume_types (id),
    availability_zone TEXT NOT NULL,
    bootable          BOOLEAN NOT NULL,
    image_id          TEXT NOT NULL,
    snapshot_id       TEXT NOT NULL,
    source_volume_id  TEXT NOT NULL,
    metadata          TEXT NOT NULL,
    image_metadata    TEXT NOT NULL,
    host              TEXT NOT NULL,
    reason            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX volumes_project ON volumes (project_id);
CREATE INDEX volumes_type ON volumes (type_id);

CREATE TABLE volume_quotas (
    project_id TEXT NOT NULL,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL,
    PRIMARY KEY (project_id, resource)
);
