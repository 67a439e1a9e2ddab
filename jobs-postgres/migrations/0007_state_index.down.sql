DROP INDEX __SCHEMA__.jobs_state_idx;
CREATE INDEX jobs_state_idx ON __SCHEMA__.jobs (state, state_at, id);
