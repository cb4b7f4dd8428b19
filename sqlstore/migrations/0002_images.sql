-- Images (Glance): the images, their free-form properties and tags, and
-- the projects a shared image is shared with. Sizes and times are BIGINT
-- (bytes, Unix microseconds); an image with no data yet has size 0 and
-- empty checksums.

CREATE TABLE images (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    visibility       TEXT NOT NULL,
    protected        BOOLEAN NOT NULL,
    os_hidden        BOOLEAN NOT NULL,
    owner            TEXT NOT NULL,
    disk_format      TEXT NOT NULL,
    container_format TEXT NOT NULL,
    size             BIGINT NOT NULL,
    virtual_size     BIGINT NOT NULL,
    checksum         TEXT NOT NULL,
    os_hash_algo     TEXT NOT NULL,
    os_hash_value    TEXT NOT NULL,
    min_disk         INTEGER NOT NULL,
    min_ram          INTEGER NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX images_owner ON images (owner);
CREATE INDEX images_visibility ON images (visibility);
CREATE INDEX images_created ON images (created_at, id);

CREATE TABLE image_properties (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (image_id, name)
);
CREATE INDEX image_properties_name ON image_properties (name, value);

CREATE TABLE image_tags (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    tag      TEXT NOT NULL,
    PRIMARY KEY (image_id, tag)
);
CREATE INDEX image_tags_tag ON image_tags (tag);

CREATE TABLE image_members (
    image_id   TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    member_id  TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (image_id, member_id)
);
CREATE INDEX image_members_member ON image_members (member_id, status);
