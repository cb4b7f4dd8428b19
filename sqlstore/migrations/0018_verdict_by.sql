-- The controller whose verifier gave a host's latest verdict: with
-- several controllers, each attests its share of the hosts.
ALTER TABLE host_attestations ADD COLUMN verdict_by TEXT NOT NULL DEFAULT '';
