-- Succeeded jobs and failed attempts per hour, upserted by the completions that count them.
-- Each connection adds to its own shard of the hour, so concurrent completers never wait on
-- one hot row; reads sum the shards.
CREATE TABLE __SCHEMA__.stats (
    hour      timestamptz NOT NULL,
    shard     smallint    NOT NULL,
    succeeded bigint      NOT NULL DEFAULT 0,
    failed    bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, shard)
);
