-- Volume messages: why something a project asked of block storage failed
-- after it was accepted (Cinder's user messages). action_id, detail_id
-- and event_id are Cinder's IDs; expires_at (Unix microseconds) is when
-- the message goes.
CREATE TABLE volume_messages (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    action_id     TEXT NOT NULL,
    detail_id     TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    message_level TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX volume_messages_project ON volume_messages (project_id);
CREATE INDEX volume_messages_expires ON volume_messages (expires_at);
