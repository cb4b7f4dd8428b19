-- Quota checks sum the vCPUs and RAM of a project's live servers at every
-- create: this index holds all they read, and only live servers, so the
-- sum reads neither the servers' rows nor those deleted long ago.
CREATE INDEX servers_live_usage ON servers (project_id, vm_state, vcpus, ram) WHERE vm_state <> 'deleted';
