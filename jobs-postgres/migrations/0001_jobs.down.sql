DROP FUNCTION __SCHEMA__.continuation_decision(text, text);
DROP TABLE __SCHEMA__.job_history;
DROP TABLE __SCHEMA__.jobs;
DROP SEQUENCE __SCHEMA__.job_positions;
