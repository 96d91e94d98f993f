-- SQLite result store.
--
-- Layout
--   conveyor_results  one row per task id (last write wins: INSERT OR REPLACE).
--       state        TaskState name (PENDING is never stored)
--       value        encoded JSON return value (opaque to the store)
--       error_*      the exception as text: type name, module, message, traceback
--       expires_at   rows at or past it are invisible and deleted by `purge_expired`
--   Indexes serve the history views: by date (updated_at) and by state then date.

-- name: schema
CREATE TABLE IF NOT EXISTS conveyor_results (
    task_id       TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    value         BLOB,
    error_type    TEXT,
    error_module  TEXT,
    error_message TEXT,
    traceback     TEXT,
    task_name     TEXT,
    queue         TEXT,
    worker        TEXT,
    attempt       INTEGER NOT NULL DEFAULT 0,
    retries       INTEGER NOT NULL DEFAULT 0,
    started_at    REAL,
    finished_at   REAL,
    reason        TEXT,
    updated_at    REAL NOT NULL,
    expires_at    REAL
);
CREATE INDEX IF NOT EXISTS conveyor_results_updated ON conveyor_results (updated_at);
CREATE INDEX IF NOT EXISTS conveyor_results_state ON conveyor_results (state, updated_at);
CREATE INDEX IF NOT EXISTS conveyor_results_expires ON conveyor_results (expires_at);

-- name: put
INSERT OR REPLACE INTO conveyor_results (
    task_id, state, value, error_type, error_module, error_message, traceback, task_name,
    queue, worker, attempt, retries, started_at, finished_at, reason, updated_at, expires_at
) VALUES (
    :task_id, :state, :value, :error_type, :error_module, :error_message, :traceback,
    :task_name, :queue, :worker, :attempt, :retries, :started_at, :finished_at, :reason,
    :updated_at, :expires_at
);

-- name: get_many
SELECT task_id, state, value, error_type, error_module, error_message, traceback, task_name,
       queue, worker, attempt, retries, started_at, finished_at, reason
FROM conveyor_results
WHERE task_id IN (SELECT value FROM json_each(:ids))
  AND (expires_at IS NULL OR expires_at > :now);

-- name: forget
DELETE FROM conveyor_results WHERE task_id IN (SELECT value FROM json_each(:ids));

-- name: purge_expired
DELETE FROM conveyor_results WHERE expires_at <= :now;
