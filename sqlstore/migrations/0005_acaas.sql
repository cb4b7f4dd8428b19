-- ACaaS: where hosts are (locations, the distances between them, the
-- physical domains that group hosts), what operators let users require
-- (requirement entries) and what projects require; the hosts' domain and
-- properties, the claims' project and isolation, the servers'
-- requirements. Times are Unix microseconds; JSON is TEXT.

CREATE TABLE locations (
    name    TEXT PRIMARY KEY,
    country TEXT NOT NULL
);

-- One row per pair of locations, with a < b as Go orders strings (the
-- store sorts them; no CHECK, as PostgreSQL's collation may order them
-- otherwise).
CREATE TABLE distances (
    a  TEXT NOT NULL REFERENCES locations (name) ON DELETE CASCADE,
    b  TEXT NOT NULL REFERENCES locations (name) ON DELETE CASCADE,
    km INTEGER NOT NULL,
    PRIMARY KEY (a, b)
);
CREATE INDEX distances_b ON distances (b);

CREATE TABLE physical_domains (
    name         TEXT PRIMARY KEY,
    location     TEXT NOT NULL REFERENCES locations (name),
    capabilities TEXT NOT NULL,
    dcot         TEXT NOT NULL,
    source       TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX physical_domains_location ON physical_domains (location);

-- The domains that take a domain's load, lower priority first. A domain
-- that is another's backup cannot be deleted.
CREATE TABLE domain_collaborators (
    domain   TEXT NOT NULL REFERENCES physical_domains (name) ON DELETE CASCADE,
    backup   TEXT NOT NULL REFERENCES physical_domains (name),
    priority INTEGER NOT NULL,
    PRIMARY KEY (domain, backup)
);
CREATE INDEX domain_collaborators_backup ON domain_collaborators (backup);

CREATE TABLE requirement_entries (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    description TEXT NOT NULL
);

CREATE TABLE project_requirements (
    project_id TEXT NOT NULL,
    entry      TEXT NOT NULL REFERENCES requirement_entries (name),
    value      TEXT NOT NULL,
    locked     BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, entry)
);
CREATE INDEX project_requirements_entry ON project_requirements (entry);

-- A host's domain is '' for none, so it is no foreign key: the store
-- checks it, holding the domain's row.
ALTER TABLE hosts ADD COLUMN domain TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN properties TEXT NOT NULL DEFAULT '{}';
ALTER TABLE hosts ADD COLUMN security TEXT NOT NULL DEFAULT '{}';
CREATE INDEX hosts_domain ON hosts (domain);

-- A claim says whose server it is and whom the server lets share the host
-- (trustack.Isolation's String form), so that the claim that would break
-- another's isolation is refused in its own transaction.
ALTER TABLE claims ADD COLUMN project_id TEXT NOT NULL DEFAULT '';
ALTER TABLE claims ADD COLUMN isolation TEXT NOT NULL DEFAULT 'shared';
UPDATE claims SET project_id = (SELECT s.project_id FROM servers s WHERE s.id = claims.server_id);
-- Listing hosts sums each host's tenants from this index alone; it also
-- serves what claims_host did.
CREATE INDEX claims_tenants ON claims (host_id, project_id, isolation);
DROP INDEX claims_host;

ALTER TABLE servers ADD COLUMN requirements TEXT NOT NULL DEFAULT '[]';
ALTER TABLE servers ADD COLUMN rcot TEXT NOT NULL DEFAULT '';
