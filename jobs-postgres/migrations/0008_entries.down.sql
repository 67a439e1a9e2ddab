-- Nothing is stored differently: the view and the functions go, the entries stay where they are.
DROP VIEW __SCHEMA__.job_entries;
DROP FUNCTION __SCHEMA__.awaiting_data(bigint);
DROP FUNCTION __SCHEMA__.enqueued_data(text, bigint);
