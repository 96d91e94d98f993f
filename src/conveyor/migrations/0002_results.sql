-- 0002: the result store's table.
--
-- conveyor_results  one row per task id. A write replaces the row only when its fencing
--                   `token` is at least the stored one, or the stored row expired.
--     state       TaskState name (PENDING is never stored)
--     value       encoded return value (opaque to the store)
--     error_*     the exception as text: type name, module, message, traceback
--     expires_at  rows at or past it are invisible and deleted by `purge_expired`
-- Indexes serve the history queries: by date, by state then date, by task then date.

CREATE TABLE conveyor_results (
    task_id       text PRIMARY KEY,
    state         text NOT NULL,
    value         bytea,
    error_type    text,
    error_module  text,
    error_message text,
    traceback     text,
    task_name     text,
    queue         text,
    worker        text,
    attempt       integer NOT NULL DEFAULT 0,
    retries       integer NOT NULL DEFAULT 0,
    started_at    double precision,
    finished_at   double precision,
    reason        text,
    updated_at    double precision NOT NULL,
    expires_at    double precision,
    token         bigint NOT NULL DEFAULT 0
) WITH (autovacuum_vacuum_scale_factor = 0.05);

CREATE INDEX conveyor_results_updated ON conveyor_results (updated_at);
CREATE INDEX conveyor_results_state ON conveyor_results (state, updated_at);
CREATE INDEX conveyor_results_task ON conveyor_results (task_name, updated_at);
CREATE INDEX conveyor_results_expires ON conveyor_results (expires_at) WHERE expires_at IS NOT NULL;
