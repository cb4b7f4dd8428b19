-- Compute: flavors, keypairs, compute hosts and their claims, server
-- groups, servers, instance actions and quotas. Times are Unix
-- microseconds (0 for "never"); JSON is TEXT.

CREATE TABLE flavors (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    vcpus       INTEGER NOT NULL,
    ram         INTEGER NOT NULL,
    disk        INTEGER NOT NULL,
    ephemeral   INTEGER NOT NULL,
    swap        INTEGER NOT NULL,
    rxtx_factor DOUBLE PRECISION NOT NULL,
    public      BOOLEAN NOT NULL,
    disabled    BOOLEAN NOT NULL,
    description TEXT NOT NULL,
    extra_specs TEXT NOT NULL
);

CREATE TABLE flavor_access (
    flavor_id  TEXT NOT NULL REFERENCES flavors (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    PRIMARY KEY (flavor_id, project_id)
);

CREATE TABLE keypairs (
    user_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, name)
);

-- A host's generation changes with every claim on it: a claim names the
-- generation it saw, and fails if another claim came first.
CREATE TABLE hosts (
    id                  TEXT PRIMARY KEY,
    number              INTEGER NOT NULL UNIQUE, -- Nova's integer ID at 2.1
    name                TEXT NOT NULL UNIQUE,
    availability_zone   TEXT NOT NULL,
    hypervisor_type     TEXT NOT NULL,
    hypervisor_version  INTEGER NOT NULL,
    hypervisor_hostname TEXT NOT NULL,
    host_ip             TEXT NOT NULL,
    vcpus               INTEGER NOT NULL,
    memory_mb           INTEGER NOT NULL,
    disk_gb             INTEGER NOT NULL,
    cpu_ratio           DOUBLE PRECISION NOT NULL,
    ram_ratio           DOUBLE PRECISION NOT NULL,
    disk_ratio          DOUBLE PRECISION NOT NULL,
    used_vcpus          INTEGER NOT NULL,
    used_memory_mb      INTEGER NOT NULL,
    used_disk_gb        INTEGER NOT NULL,
    running_vms         INTEGER NOT NULL,
    generation          BIGINT NOT NULL,
    enabled             BOOLEAN NOT NULL,
    disabled_reason     TEXT NOT NULL,
    forced_down         BOOLEAN NOT NULL,
    last_seen           BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE server_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    policy     TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX server_groups_project ON server_groups (project_id);

CREATE TABLE servers (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    project_id        TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    image_id          TEXT NOT NULL,
    flavor            TEXT NOT NULL, -- the flavor as it was, JSON
    vcpus             INTEGER NOT NULL, -- the flavor's, for quota sums
    ram               INTEGER NOT NULL,
    key_name          TEXT NOT NULL,
    key_data          TEXT NOT NULL,
    metadata          TEXT NOT NULL,
    availability_zone TEXT NOT NULL,
    user_data         TEXT NOT NULL,
    host              TEXT NOT NULL,
    node              TEXT NOT NULL,
    vm_state          TEXT NOT NULL,
    task_state        TEXT NOT NULL,
    power_state       INTEGER NOT NULL,
    fault             TEXT NOT NULL,
    locked            BOOLEAN NOT NULL,
    locked_by         TEXT NOT NULL,
    group_id          TEXT NOT NULL,
    hints             TEXT NOT NULL,
    reservation_id    TEXT NOT NULL,
    launch_index      INTEGER NOT NULL,
    access_ipv4       TEXT NOT NULL,
    access_ipv6       TEXT NOT NULL,
    config_drive      BOOLEAN NOT NULL,
    disk_config       TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    launched_at       BIGINT NOT NULL,
    terminated_at     BIGINT NOT NULL
);
CREATE INDEX servers_project ON servers (project_id, created_at);
CREATE INDEX servers_host ON servers (host);
CREATE INDEX servers_group ON servers (group_id);
CREATE INDEX servers_reservation ON servers (reservation_id);
CREATE INDEX servers_task ON servers (task_state);

-- What each placed server takes of its host.
CREATE TABLE claims (
    server_id TEXT PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    host_id   TEXT NOT NULL REFERENCES hosts (id),
    vcpus     INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    disk_gb   INTEGER NOT NULL
);
CREATE INDEX claims_host ON claims (host_id);

CREATE TABLE instance_actions (
    server_id  TEXT NOT NULL,
    request_id TEXT NOT NULL,
    action     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    project_id TEXT NOT NULL,
    start_time BIGINT NOT NULL,
    message    TEXT NOT NULL,
    PRIMARY KEY (server_id, request_id)
);

CREATE TABLE action_events (
    server_id   TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    event       TEXT NOT NULL,
    start_time  BIGINT NOT NULL,
    finish_time BIGINT NOT NULL,
    result      TEXT NOT NULL,
    host        TEXT NOT NULL,
    details     TEXT NOT NULL,
    PRIMARY KEY (server_id, request_id, event)
);

CREATE TABLE quotas (
    project_id TEXT NOT NULL,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL,
    PRIMARY KEY (project_id, resource)
);

-- One row per project, locked while a request that uses quota checks it,
-- so that concurrent requests cannot both pass a check that only one fits.
CREATE TABLE quota_locks (
    project_id TEXT PRIMARY KEY
);
