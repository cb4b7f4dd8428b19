-- A volume's attachment to the server it serves (one at most): the
-- attachment's ID ('' for none), the server, its compute host, the device
-- the guest sees, when it was attached; and the volume's administrative
-- metadata (readonly, attached_mode), a JSON object.
ALTER TABLE volumes ADD COLUMN attachment_id TEXT NOT NULL DEFAULT '';
ALTER TABLE volumes ADD COLUMN server_id TEXT NOT NULL DEFAULT '';
ALTER TABLE volumes ADD COLUMN attached_host TEXT NOT NULL DEFAULT '';
ALTER TABLE volumes ADD COLUMN device TEXT NOT NULL DEFAULT '';
ALTER TABLE volumes ADD COLUMN attached_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE volumes ADD COLUMN admin_metadata TEXT NOT NULL DEFAULT '{}';
CREATE INDEX volumes_server ON volumes (server_id);
