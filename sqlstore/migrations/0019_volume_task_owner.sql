-- The controller that carries out a volume's or a snapshot's operation in
-- progress (creating, extending, uploading, deleting, reverting; creating,
-- deleting, restoring): it alone takes the operation up after a restart,
-- and another controller takes it over only once the owner's lease has
-- expired. Rows from before this column have no owner, which no live
-- controller is: any may take them.
ALTER TABLE volumes ADD COLUMN task_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE volume_snapshots ADD COLUMN task_owner TEXT NOT NULL DEFAULT '';
