-- block_devices: JSON array of the volumes a server was made with, as its
-- block device mapping asked (trustack.BlockDevice); '[]' for a server
-- booted from its image alone.
ALTER TABLE servers ADD COLUMN block_devices TEXT NOT NULL DEFAULT '[]';
