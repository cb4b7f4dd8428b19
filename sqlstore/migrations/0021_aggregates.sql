-- Host aggregates (Nova's os-aggregates): named groups of compute hosts
-- with metadata. IDs are Nova's integers and never reused, so a deleted
-- aggregate keeps its row, with deleted_at set (0 while it lives); names
-- are unique among the living. availability_zone repeats the metadata's
-- key of that name ('' for none), for the queries that keep zones apart.
-- Times are Unix microseconds; JSON is TEXT.
CREATE TABLE aggregates (
    id                INTEGER PRIMARY KEY,
    uuid              TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    availability_zone TEXT NOT NULL,
    metadata          TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    deleted_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX aggregates_name ON aggregates (name) WHERE deleted_at = 0;

-- A host is in an aggregate at most once; deleting the host takes it out.
CREATE TABLE aggregate_hosts (
    aggregate_id INTEGER NOT NULL REFERENCES aggregates (id),
    host         TEXT NOT NULL REFERENCES hosts (name) ON DELETE CASCADE,
    PRIMARY KEY (aggregate_id, host)
);
CREATE INDEX aggregate_hosts_host ON aggregate_hosts (host);

-- A host's availability_zone is now its aggregates' zone, if one has one,
-- else the zone it registered with, kept here.
ALTER TABLE hosts ADD COLUMN registered_zone TEXT NOT NULL DEFAULT '';
UPDATE hosts SET registered_zone = availability_zone;
