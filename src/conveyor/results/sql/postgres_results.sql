-- PostgreSQL result store. The table comes from migrations/0002_results.sql, whose header
-- documents the layout. %(now)s is NULL unless a clock is injected: conveyor_now() then reads
-- the database's clock. A write of a ready (terminal) outcome NOTIFYs the schema's results
-- channel, which waiting readers LISTEN on.

-- name: put
-- One statement for a batch: atomic. Returns the ids stored (a smaller token loses, and so
-- does a bare STARTED over another state of the same token: see results/base.py).
WITH t AS (SELECT conveyor_now(%(now)s) AS now),
up AS (
    INSERT INTO conveyor_results AS r (
        task_id, state, value, error_type, error_module, error_message, traceback, task_name,
        queue, worker, attempt, retries, started_at, finished_at, reason, updated_at,
        expires_at, token, arguments
    )
    SELECT u.task_id, u.state, u.value, u.error_type, u.error_module, u.error_message,
           u.traceback, u.task_name, u.queue, u.worker, u.attempt, u.retries, u.started_at,
           u.finished_at, u.reason, t.now, t.now + %(ttl)s::float8, u.token, u.arguments
    FROM t, unnest(
        %(task_id)s::text[], %(state)s::text[], %(value)s::bytea[], %(error_type)s::text[],
        %(error_module)s::text[], %(error_message)s::text[], %(traceback)s::text[],
        %(task_name)s::text[], %(queue)s::text[], %(worker)s::text[], %(attempt)s::int[],
        %(retries)s::int[], %(started_at)s::float8[], %(finished_at)s::float8[],
        %(reason)s::text[], %(token)s::bigint[], %(arguments)s::bytea[]
    ) AS u(task_id, state, value, error_type, error_module, error_message, traceback,
           task_name, queue, worker, attempt, retries, started_at, finished_at, reason, token,
           arguments)
    ON CONFLICT (task_id) DO UPDATE SET
        state = excluded.state, value = excluded.value, error_type = excluded.error_type,
        error_module = excluded.error_module, error_message = excluded.error_message,
        traceback = excluded.traceback, task_name = excluded.task_name,
        queue = excluded.queue, worker = excluded.worker, attempt = excluded.attempt,
        retries = excluded.retries, started_at = excluded.started_at,
        finished_at = excluded.finished_at, reason = excluded.reason,
        updated_at = excluded.updated_at, expires_at = excluded.expires_at,
        token = excluded.token, arguments = excluded.arguments
    WHERE excluded.token > r.token OR r.expires_at <= excluded.updated_at
       OR (excluded.token = r.token AND (excluded.state <> 'STARTED' OR r.state = 'STARTED'))
    RETURNING r.task_id, r.state
),
woke AS (
    SELECT pg_notify(%(channel)s, '')
    FROM (SELECT 1 FROM up WHERE state = ANY(%(ready_states)s::text[]) LIMIT 1) x
)
SELECT task_id, (SELECT count(*) FROM woke) FROM up;

-- name: get_many
SELECT task_id, state, value, error_type, error_module, error_message, traceback, task_name,
       queue, worker, attempt, retries, started_at, finished_at, reason, token, arguments
FROM conveyor_results
WHERE task_id = ANY(%(ids)s::text[])
  AND (expires_at IS NULL OR expires_at > conveyor_now(%(now)s));

-- name: history
-- Newest first; (updated_at, task_id) is the page cursor. Workflow bookkeeping rows
-- (results/base.py WORKFLOW_RECORDS) are left out.
SELECT task_id, state, value, error_type, error_module, error_message, traceback, task_name,
       queue, worker, attempt, retries, started_at, finished_at, reason, token, arguments,
       updated_at
FROM conveyor_results
WHERE (expires_at IS NULL OR expires_at > conveyor_now(%(now)s))
  AND (%(state)s::text IS NULL OR state = %(state)s::text)
  AND (%(task)s::text IS NULL OR task_name = %(task)s::text)
  AND (%(since)s::float8 IS NULL OR updated_at >= %(since)s::float8)
  AND (%(before_at)s::float8 IS NULL
       OR (updated_at, task_id) < (%(before_at)s::float8, %(before_id)s::text))
  AND coalesce(task_name, '') NOT IN ('conveyor.chord', 'conveyor.group')
ORDER BY updated_at DESC, task_id DESC
LIMIT %(limit)s;

-- name: forget
DELETE FROM conveyor_results WHERE task_id = ANY(%(ids)s::text[]);

-- name: purge_expired
DELETE FROM conveyor_results WHERE expires_at <= conveyor_now(%(now)s);

-- name: purge_expired_joins
-- Chords whose joins expired (migrations/0006_chord_counts.sql), members first.
WITH gone AS (
    DELETE FROM conveyor_chord_counts WHERE expires_at <= conveyor_now(%(now)s)
    RETURNING chord_id
)
DELETE FROM conveyor_chord_members WHERE chord_id IN (SELECT chord_id FROM gone);

-- name: lock_chord
SELECT pg_advisory_xact_lock(hashtextextended('conveyor-chord:' || %(chord)s, 0));

-- name: reset_chord
-- A chord whose joins expired starts again from nothing. Its members are deleted only then:
-- otherwise (one-time filter) the statement reads one count row.
WITH gone AS (
    DELETE FROM conveyor_chord_counts
     WHERE chord_id = %(chord)s AND expires_at <= conveyor_now(%(now)s)
    RETURNING chord_id
)
DELETE FROM conveyor_chord_members
 WHERE chord_id = %(chord)s AND EXISTS (SELECT 1 FROM gone);

-- name: join_chord
-- A member joining twice stays one row; the trigger conveyor_chord_joined counts inserts only.
INSERT INTO conveyor_chord_members (chord_id, member_id, expires_at)
VALUES (%(chord)s, %(member)s, conveyor_now(%(now)s) + %(ttl)s::float8)
ON CONFLICT (chord_id, member_id) DO UPDATE SET expires_at = excluded.expires_at;

-- name: count_chord
-- After the insert's trigger has run (at the end of its statement): the chord's count, and
-- its joins' expiry refreshed.
UPDATE conveyor_chord_counts SET expires_at = conveyor_now(%(now)s) + %(ttl)s::float8
 WHERE chord_id = %(chord)s
RETURNING joined;
