-- Running servers and their heartbeats (shown on the dashboard, removed when dead).
CREATE TABLE __SCHEMA__.servers (
    id           text        PRIMARY KEY,
    queues       text[]      NOT NULL,
    workers      bigint      NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);

-- The maintenance leader: one row, taken with a conditional upsert.
CREATE TABLE __SCHEMA__.leader (
    role       text        PRIMARY KEY,
    server_id  text        NOT NULL,
    expires_at timestamptz NOT NULL
);
