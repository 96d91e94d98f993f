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
--   conveyor_chord_members  one row per member of a chord that joined (succeeded); a member
--                     joining twice stays one row. Its own expires_at is kept but not used:
--                     a chord's joins expire together, with its count.
--   conveyor_chord_counts   one row per chord: `joined`, its number of member rows, kept by the
--                     trigger conveyor_chord_joined in the transaction of each member insert
--                     (whoever inserts), so a join reads one row instead of counting the
--                     header; `expires_at`, refreshed by every join, is when the chord's joins
--                     expire (its members are then deleted with it). Files from earlier
--                     releases gain the table and trigger, counted from their member rows,
--                     through the upgrade_chord_counts_* statements.

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

-- name: chord_counts_present
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'conveyor_chord_counts';

-- name: upgrade_chord_counts_table
CREATE TABLE conveyor_chord_counts (
    chord_id    TEXT PRIMARY KEY,
    joined      INTEGER NOT NULL,
    expires_at  REAL
);

-- name: upgrade_chord_counts_index
CREATE INDEX conveyor_chord_counts_expires ON conveyor_chord_counts (expires_at);

-- name: upgrade_chord_counts_trigger
CREATE TRIGGER conveyor_chord_joined AFTER INSERT ON conveyor_chord_members
BEGIN
    INSERT INTO conveyor_chord_counts (chord_id, joined, expires_at)
    VALUES (NEW.chord_id, 1, NEW.expires_at)
    ON CONFLICT (chord_id) DO UPDATE SET joined = joined + 1, expires_at = excluded.expires_at;
END;

-- name: upgrade_chord_counts_fill
-- A chord's joins expire together now: with its last member's expiry (NULL if any never does).
INSERT INTO conveyor_chord_counts (chord_id, joined, expires_at)
SELECT chord_id, count(*), CASE WHEN count(expires_at) < count(*) THEN NULL ELSE max(expires_at) END
FROM conveyor_chord_members GROUP BY chord_id;

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
WHERE excluded.token > conveyor_results.token OR conveyor_results.expires_at <= :updated_at
   OR (excluded.token = conveyor_results.token
       AND (excluded.state <> 'STARTED' OR conveyor_results.state = 'STARTED'));

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
DELETE FROM conveyor_chord_members
 WHERE chord_id IN (SELECT chord_id FROM conveyor_chord_counts WHERE expires_at <= :now);

-- name: purge_expired_counts
DELETE FROM conveyor_chord_counts WHERE expires_at <= :now;

-- name: chord_count
SELECT joined, expires_at FROM conveyor_chord_counts WHERE chord_id = :chord;

-- name: forget_chord_members
-- A chord whose joins expired starts again from nothing (its count row goes next).
DELETE FROM conveyor_chord_members WHERE chord_id = :chord;

-- name: forget_chord_count
DELETE FROM conveyor_chord_counts WHERE chord_id = :chord;

-- name: join_chord
-- A chord's members, one row each (a member joining twice is one row: the trigger counts
-- only inserts); the write lock of the transaction counts concurrent joins one after another.
INSERT INTO conveyor_chord_members (chord_id, member_id, expires_at)
VALUES (:chord, :member, :expires)
ON CONFLICT (chord_id, member_id) DO UPDATE SET expires_at = excluded.expires_at;

-- name: touch_chord
UPDATE conveyor_chord_counts SET expires_at = :expires WHERE chord_id = :chord;
