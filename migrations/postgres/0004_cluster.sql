-- Cluster nodes look for tickets changed in the last few seconds, to deliver events whose
-- publication over Redis they missed (see src/cluster/sweep.rs).
CREATE INDEX tickets_changed_idx ON tickets (updated_at);
