-- Recurring (CRON) job definitions. A firing is claimed by a compare-and-set on next_run.
CREATE TABLE __SCHEMA__.recurring_jobs (
    id              text        PRIMARY KEY,
    cron            text        NOT NULL,
    time_zone       text        NOT NULL,
    job_name        text        NOT NULL,
    queue           text        NOT NULL,
    args            text        NOT NULL,
    misfire         text        NOT NULL,
    skip_if_running boolean     NOT NULL,
    paused          boolean     NOT NULL,
    next_run        timestamptz,
    last_run        timestamptz,
    last_job_id     bigint,
    last_error      text,
    created_at      timestamptz NOT NULL,
    CONSTRAINT recurring_jobs_misfire_check CHECK (misfire IN ('fire_once', 'fire_all'))
);
