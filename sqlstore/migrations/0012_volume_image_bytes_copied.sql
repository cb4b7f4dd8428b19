-- image_bytes_copied: how many bytes of its image the storage host of a
-- volume made from one has copied, as the host last reported.
ALTER TABLE volumes ADD COLUMN image_bytes_copied BIGINT NOT NULL DEFAULT 0;
