-- Networking: networks and their segments, subnets, ports and the
-- addresses allocated to them, security groups and their rules, routers,
-- floating IPs and networking quotas; and what compute hosts say of their
-- wiring. Times are Unix microseconds (0 for "never"); JSON is TEXT;
-- addresses are TEXT in their canonical form (netip's).

-- physical_networks: JSON array of the physical networks a host's agent
-- says it is wired to; network_node: it runs DHCP servers and routers.
ALTER TABLE hosts ADD COLUMN physical_networks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE hosts ADD COLUMN network_node BOOLEAN NOT NULL DEFAULT FALSE;

-- ports: JSON array of a server's ports, in the order of its NICs;
-- user_ports: those of them its user made and gave it.
ALTER TABLE servers ADD COLUMN ports TEXT NOT NULL DEFAULT '[]';
ALTER TABLE servers ADD COLUMN user_ports TEXT NOT NULL DEFAULT '[]';

-- segment_key is what makes two networks' segments the same: the type,
-- physical network and segmentation ID of a VLAN or VXLAN segment, the
-- physical network of a flat one; NULL for local networks, which share
-- nothing.
CREATE TABLE networks (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    project_id       TEXT NOT NULL,
    description      TEXT NOT NULL,
    admin_state_up   BOOLEAN NOT NULL,
    status           TEXT NOT NULL,
    shared           BOOLEAN NOT NULL,
    external         BOOLEAN NOT NULL,
    network_type     TEXT NOT NULL,
    physical_network TEXT NOT NULL,
    segmentation_id  INTEGER NOT NULL,
    segment_key      TEXT UNIQUE,
    mtu              INTEGER NOT NULL,
    port_security    BOOLEAN NOT NULL,
    tags             TEXT NOT NULL, -- JSON array
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    revision         BIGINT NOT NULL
);
CREATE INDEX networks_project ON networks (project_id);

CREATE TABLE subnets (
    id                TEXT PRIMARY KEY,
    network_id        TEXT NOT NULL REFERENCES networks (id),
    name              TEXT NOT NULL,
    project_id        TEXT NOT NULL,
    description       TEXT NOT NULL,
    ip_version        INTEGER NOT NULL,
    cidr              TEXT NOT NULL,
    gateway_ip        TEXT NOT NULL, -- '' for none
    allocation_pools  TEXT NOT NULL, -- JSON array of {"start", "end"}
    enable_dhcp       BOOLEAN NOT NULL,
    dns_nameservers   TEXT NOT NULL, -- JSON array
    host_routes       TEXT NOT NULL, -- JSON array of {"destination", "nexthop"}
    ipv6_ra_mode      TEXT NOT NULL,
    ipv6_address_mode TEXT NOT NULL,
    tags              TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    revision          BIGINT NOT NULL
);
CREATE INDEX subnets_network ON subnets (network_id);
CREATE INDEX subnets_project ON subnets (project_id);

CREATE TABLE ports (
    id                    TEXT PRIMARY KEY,
    network_id            TEXT NOT NULL REFERENCES networks (id),
    name                  TEXT NOT NULL,
    project_id            TEXT NOT NULL,
    description           TEXT NOT NULL,
    mac_address           TEXT NOT NULL,
    admin_state_up        BOOLEAN NOT NULL,
    status                TEXT NOT NULL,
    device_owner          TEXT NOT NULL,
    device_id             TEXT NOT NULL,
    port_security         BOOLEAN NOT NULL,
    allowed_address_pairs TEXT NOT NULL, -- JSON array of {"ip_address", "mac_address"}
    host_id               TEXT NOT NULL,
    vnic_type             TEXT NOT NULL,
    tags                  TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    revision              BIGINT NOT NULL,
    UNIQUE (network_id, mac_address)
);
CREATE INDEX ports_device ON ports (device_id);
CREATE INDEX ports_project ON ports (project_id);
CREATE INDEX ports_host ON ports (host_id);

-- A port's fixed IPs, in the order it has them. An address is allocated
-- at most once per subnet, and subnets of a network do not overlap: so
-- at most once per network.
CREATE TABLE ip_allocations (
    subnet_id  TEXT NOT NULL REFERENCES subnets (id),
    ip_address TEXT NOT NULL,
    port_id    TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX ip_allocations_port ON ip_allocations (port_id);

-- is_default marks a project's default group, one per project; it is set
-- once, after the group's row is in.
CREATE TABLE security_groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    description TEXT NOT NULL,
    stateful    BOOLEAN NOT NULL,
    is_default  BOOLEAN NOT NULL DEFAULT FALSE,
    tags        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    revision    BIGINT NOT NULL
);
CREATE INDEX security_groups_project ON security_groups (project_id);
CREATE UNIQUE INDEX security_groups_default ON security_groups (project_id) WHERE is_default;

-- port_min and port_max are -1 for none. A rule is unique by what it
-- lets through within its group.
CREATE TABLE security_group_rules (
    id                TEXT PRIMARY KEY,
    security_group_id TEXT NOT NULL REFERENCES security_groups (id) ON DELETE CASCADE,
    project_id        TEXT NOT NULL,
    direction         TEXT NOT NULL,
    ethertype         TEXT NOT NULL,
    protocol          TEXT NOT NULL,
    port_min          INTEGER NOT NULL,
    port_max          INTEGER NOT NULL,
    remote_ip_prefix  TEXT NOT NULL,
    remote_group_id   TEXT NOT NULL,
    description       TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    revision          BIGINT NOT NULL,
    UNIQUE (security_group_id, direction, ethertype, protocol, port_min, port_max, remote_ip_prefix, remote_group_id)
);
CREATE INDEX security_group_rules_remote ON security_group_rules (remote_group_id);
CREATE INDEX security_group_rules_project ON security_group_rules (project_id);

-- The groups a port is in; a group in use by a port cannot be deleted.
CREATE TABLE port_security_groups (
    port_id           TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
    security_group_id TEXT NOT NULL REFERENCES security_groups (id),
    PRIMARY KEY (port_id, security_group_id)
);
CREATE INDEX port_security_groups_group ON port_security_groups (security_group_id);

-- A router's gateway is its port owned by network:router_gateway; its
-- interfaces are its ports owned by network:router_interface.
CREATE TABLE routers (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    project_id      TEXT NOT NULL,
    description     TEXT NOT NULL,
    admin_state_up  BOOLEAN NOT NULL,
    status          TEXT NOT NULL,
    gw_network_id   TEXT NOT NULL, -- '' for no gateway
    enable_snat     BOOLEAN NOT NULL,
    routes          TEXT NOT NULL, -- JSON array of {"destination", "nexthop"}
    tags            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    revision        BIGINT NOT NULL
);
CREATE INDEX routers_project ON routers (project_id);

-- A floating IP's address is held by its own port on the external
-- network (network:floatingip). A fixed address has at most one floating
-- IP.
CREATE TABLE floating_ips (
    id                  TEXT PRIMARY KEY,
    project_id          TEXT NOT NULL,
    description         TEXT NOT NULL,
    floating_network_id TEXT NOT NULL REFERENCES networks (id),
    floating_port_id    TEXT NOT NULL REFERENCES ports (id),
    floating_ip_address TEXT NOT NULL,
    port_id             TEXT REFERENCES ports (id),
    fixed_ip_address    TEXT NOT NULL, -- '' while not associated
    router_id           TEXT NOT NULL, -- '' while not associated
    status              TEXT NOT NULL,
    tags                TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    revision            BIGINT NOT NULL,
    UNIQUE (port_id, fixed_ip_address)
);
CREATE INDEX floating_ips_project ON floating_ips (project_id);
CREATE INDEX floating_ips_router ON floating_ips (router_id);

CREATE TABLE network_quotas (
    project_id TEXT NOT NULL,
    resource   TEXT NOT NULL,
    hard_limit INTEGER NOT NULL,
    PRIMARY KEY (project_id, resource)
);
