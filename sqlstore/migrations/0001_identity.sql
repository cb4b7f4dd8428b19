-- Identity: domains, projects, users, groups, roles and their assignments,
-- the service catalog, and token revocations. One SQL for SQLite and
-- PostgreSQL: TEXT identifiers, BOOLEAN flags, BIGINT Unix microseconds,
-- JSON as TEXT.

CREATE TABLE domains (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    extra       TEXT NOT NULL
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    domain_id   TEXT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    parent_id   TEXT NOT NULL, -- the domain's ID for a top-level project
    enabled     BOOLEAN NOT NULL,
    tags        TEXT NOT NULL, -- a JSON array
    extra       TEXT NOT NULL,
    UNIQUE (domain_id, name)
);
CREATE INDEX projects_parent ON projects (parent_id);

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    domain_id          TEXT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    default_project_id TEXT NOT NULL,
    enabled            BOOLEAN NOT NULL,
    extra              TEXT NOT NULL,
    password_hash      TEXT NOT NULL DEFAULT '',
    UNIQUE (domain_id, name)
);

CREATE TABLE user_groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    domain_id   TEXT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    extra       TEXT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    extra       TEXT NOT NULL
);

CREATE TABLE implied_roles (
    prior_id   TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    implied_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (prior_id, implied_id)
);

-- An assignment's actor is a user or a group and its target a project or a
-- domain; the store removes them when it deletes the actor or the target.
CREATE TABLE assignments (
    role_id     TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    actor_type  TEXT NOT NULL CHECK (actor_type IN ('user', 'group')),
    actor_id    TEXT NOT NULL,
    target_type TEXT NOT NULL CHECK (target_type IN ('project', 'domain')),
    target_id   TEXT NOT NULL,
    PRIMARY KEY (actor_type, actor_id, target_type, target_id, role_id)
);
CREATE INDEX assignments_target ON assignments (target_id);
CREATE INDEX assignments_role ON assignments (role_id);

CREATE TABLE regions (
    id               TEXT PRIMARY KEY,
    description      TEXT NOT NULL,
    parent_region_id TEXT REFERENCES regions (id),
    extra            TEXT NOT NULL
);

CREATE TABLE services (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    extra       TEXT NOT NULL
);

CREATE TABLE endpoints (
    id         TEXT PRIMARY KEY,
    service_id TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    region_id  TEXT REFERENCES regions (id),
    interface  TEXT NOT NULL,
    url        TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    extra      TEXT NOT NULL
);

CREATE TABLE revocations (
    audit_id      TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    issued_before BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX revocations_audit ON revocations (audit_id);
CREATE INDEX revocations_user ON revocations (user_id);
