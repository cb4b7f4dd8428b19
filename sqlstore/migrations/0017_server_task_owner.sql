-- The controller that carries out a server's task in progress: it alone
-- takes the task up after a restart, and another controller takes it over
-- only once the owner's lease has expired. Rows from before this column
-- have no owner, which no live controller is: any may take them.
ALTER TABLE servers ADD COLUMN task_owner TEXT NOT NULL DEFAULT '';
CREATE INDEX servers_in_task ON servers (task_owner) WHERE task_state <> '';
