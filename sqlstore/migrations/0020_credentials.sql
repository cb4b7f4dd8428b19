-- Credentials (Keystone's /v3/credentials): secrets users keep for other
-- services, such as the access and secret keys of the S3 API. The blob is
-- encrypted with the Fernet keys of the credential key repository; access
-- is an ec2 credential's access key ('' for other types), by which the S3
-- API finds it. Deleting a user or a project deletes its credentials, as
-- Keystone does.
CREATE TABLE credentials (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id TEXT REFERENCES projects (id) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    blob       TEXT NOT NULL,
    access     TEXT NOT NULL,
    extra      TEXT NOT NULL
);
CREATE INDEX credentials_user ON credentials (user_id);
CREATE INDEX credentials_project ON credentials (project_id);
CREATE UNIQUE INDEX credentials_access ON credentials (access) WHERE access <> '';
