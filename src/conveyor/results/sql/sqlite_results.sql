-- SQLite result store.
--
-- Layout
--   conveyor_results  one row per task id. A write replaces the row only when its fencing
--                     `token` is at least the stored one, or the stored row expired.
--       state        TaskState name (PENDING is never stored)
--       value        encoded JSON return value (opaque to the store)
--       error_*      the exception as text: type name, module, message, traceback
--       expires_at   rows at or past it are invisible and deleted by `purge_expired`
--       arguments    JSON {"args", "kwargs"} of the call, only with result_extended
--   Indexes serve the history views: by date (updated_at), by state then date, by task then
--   date. Files from earlier releases gain the newer columns through the upgrade_* statements.

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
    expires_at    REAL,
    token         INTEGER NOT NULL DEFAULT 0,
    arguments     BLOB
);
CREATE INDEX IF NOT EXISTS conveyor_results_updated ON conveyor_results (updated_at);
CREATE INDEX IF NOT EXISTS conveyor_results_state ON conveyor_results (state, updated_at);
CREATE INDEX IF NOT EXISTS conveyor_results_task ON conveyor_results (task_name, updated_at);
CREATE INDEX IF NOT EXISTS conveyor_results_expires ON conveyor_results (expires_at);
CREATE TABLE IF NOT EXISTS conveyor_chord_members (
    chord_id    TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    expires_at  REAL,
    PRIMARY KEY (chord_id, member_id)
);

-- name: columns
SELECT name FROM pragma_table_info('conveyor_results');

-- name: upgrade_token
ALTER TABLE conveyor_results ADD COLUMN token INTEGER NOT NULL DEFAULT 0;

-- name: upgrade_arguments
ALTER TABLE conveyor_results ADD COLUMN arguments BLOB;

-- name: put
INSERT INTO conveyor_results (
    task_id, state, value, error_type, error_module, error_message, traceback, task_name,
    queue, worker, attempt, retries, started_at, finished_at, reason, updated_at, expires_at,
    token, arguments
) VALUES (
    :task_id, :state, :value, :error_type, :error_module, :error_message, :traceback,
    :task_name, :queue, :worker, :attempt, :retries, :started_at, :finished_at, :reason,
    :updated_at, :expires_at, :token, :arguments
)
ON CONFLICT (task_id) DO UPDATE SET
    state = excluded.state, value = excluded.value, error_type = excluded.error_type,
    error_module = excluded.error_module, error_message = excluded.error_message,
    traceback = excluded.traceback, task_name = excluded.task_name, queue = excluded.queue,
    worker = excluded.worker, attempt = excluded.attempt, retries = excluded.retries,
    started_at = excluded.started_at, finished_at = excluded.finished_at,
    reason = excluded.reason, updated_at = excluded.updated_at,
    expires_at = excluded.expires_at, token = excluded.token, arguments = excluded.arguments
WHERE excluded.token >= conveyor_results.token OR conveyor_results.expires_at <= :updated_at;

-- name: get_many
SELECT task_id, state, value, error_type, error_module, error_message, traceback, task_name,
       queue, worker, attempt, retries, started_at, finished_at, reason, token, arguments
FROM conveyor_results
WHERE task_id IN (SELECT value FROM json_each(:ids))
  AND (expires_at IS NULL OR expires_at > :now);

-- name: history
-- Newest first; (updated_at, task_id) is the page cursor. Workflow bookkeeping rows
-- (results/base.py WORKFLOW_RECORDS) are left out.
SELECT task_id, state, value, error_type, error_module, error_message, traceback, task_name,
       queue, worker, attempt, retries, started_at, finished_at, reason, token, arguments,
       updated_at
FROM conveyor_results
WHERE (expires_at IS NULL OR expires_at > :now)
  AND (:state IS NULL OR state = :state)
  AND (:task IS NULL OR task_name = :task)
  AND (:since IS NULL OR updated_at >= :since)
  AND (:before_at IS NULL OR (updated_at, task_id) < (:before_at, :before_id))
  AND coalesce(task_name, '') NOT IN ('conveyor.chord', 'conveyor.group')
ORDER BY updated_at DESC, task_id DESC
LIMIT :limit;

-- name: forget
DELETE FROM conveyor_results WHERE task_id IN (SELECT value FROM json_each(:ids));

-- name: purge_expired
DELETE FROM conveyor_results WHERE expires_at <= :now;

-- name: purge_expired_joins
DELETE FROM conveyor_chord_members WHERE expires_at <= :now;

-- name: join_chord
-- A chord's members, one row each (a member joining twice is one row); the write lock of the
-- transaction counts concurrent joins one after another.
INSERT INTO conveyor_chord_members (chord_id, member_id, expires_at)
VALUES (:chord, :member, :expires)
ON CONFLICT (chord_id, member_id) DO UPDATE SET expires_at = excluded.expires_at;

-- name: count_chord
SELECT count(*) FROM conveyor_chord_members
 WHERE chord_id = :chord AND (expires_at IS NULL OR expires_at > :now);
