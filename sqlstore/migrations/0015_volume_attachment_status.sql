-- A volume attachment's own status (reserved, attaching, attached,
-- detaching; '' for none), the NBD connection given to the caller of the
-- attachments API (a JSON object, 'null' for none), when it was made;
-- and an index to find a volume by its attachment. Attachments made
-- before are attached (one being let go too, as Cinder's os-begin_detaching
-- leaves it), and were made when attached.
ALTER TABLE volumes ADD COLUMN attach_status TEXT NOT NULL DEFAULT '';
ALTER TABLE volumes ADD COLUMN attachment_connection TEXT NOT NULL DEFAULT 'null';
ALTER TABLE volumes ADD COLUMN attachment_created_at BIGINT NOT NULL DEFAULT 0;
UPDATE volumes SET attach_status = 'attached', attachment_created_at = attached_at WHERE attachment_id <> '';
CREATE INDEX volumes_attachment ON volumes (attachment_id);
