-- SQLite broker.
--
-- Layout
--   conveyor_messages  one row per envelope, keyed by `seq` (AUTOINCREMENT: never reused, so it is
--                      the enqueue order) with a UNIQUE message `id`.
--       state  0 ready      due now; ordered by (priority DESC, available_at, seq)
--              1 scheduled  due at available_at; promoted to ready by `promote_due`
--              2 leased     held until lease_expires under fencing token `token`
--              3 dead       dead-lettered with `reason`
--              4 done       acknowledged or revoked; body dropped, id kept until done_at + window
--                           so a repeated enqueue of the same id stays a no-op
--       deliveries  grants so far (the attempt number of the latest grant)
--       lost        runs cut off (lease expired, or released as lost); at max_deliveries the
--                   row goes dead
--       begun       an at-most-once run of it started (`begin`)
--       revoked     revoked while leased (`terminate`: its run must be killed)
--       last_error  the error of the latest retry or lost run; `reason` says why it is dead
--       updated_at  when the row last changed state (dead letters: when it died)
--   conveyor_counters  `lease`: the last fencing token granted (one per reserve batch; a
--                      message appears once per batch, so (id, token) is unique)
--   conveyor_rates     one row per rate-limit key: `tat`, the next free start slot
--   conveyor_workers   one row per worker name: its published WorkerInfo (JSON)
--   conveyor_events    the event stream: one row per encoded event, `id` AUTOINCREMENT (never
--                      reused; writers are serialized, so ids are given in commit order and a
--                      reader paging by id skips nothing); the oldest rows past the stream's
--                      limit are deleted by id in the same transaction as each publish
--
-- Every write runs inside BEGIN IMMEDIATE, so each named statement group is atomic.

-- name: schema
CREATE TABLE IF NOT EXISTS conveyor_messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    queue          TEXT    NOT NULL,
    priority       INTEGER NOT NULL,
    state          INTEGER NOT NULL,
    available_at   REAL    NOT NULL,
    body           BLOB,
    max_deliveries INTEGER NOT NULL,
    deliveries     INTEGER NOT NULL DEFAULT 0,
    lost           INTEGER NOT NULL DEFAULT 0,
    token          INTEGER NOT NULL DEFAULT 0,
    lease_expires  REAL    NOT NULL DEFAULT 0,
    reason         TEXT,
    done_at        REAL,
    begun          INTEGER NOT NULL DEFAULT 0,
    revoked        INTEGER NOT NULL DEFAULT 0,
    terminate      INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    updated_at     REAL
);
CREATE INDEX IF NOT EXISTS conveyor_messages_ready
    ON conveyor_messages (queue, priority DESC, available_at, seq) WHERE state = 0;
CREATE INDEX IF NOT EXISTS conveyor_messages_scheduled
    ON conveyor_messages (available_at) WHERE state = 1;
CREATE INDEX IF NOT EXISTS conveyor_messages_leased
    ON conveyor_messages (lease_expires) WHERE state = 2;
CREATE INDEX IF NOT EXISTS conveyor_messages_done
    ON conveyor_messages (done_at) WHERE state = 4;
CREATE INDEX IF NOT EXISTS conveyor_messages_queue_state
    ON conveyor_messages (queue, state);
CREATE TABLE IF NOT EXISTS conveyor_counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO conveyor_counters (name, value) VALUES ('lease', 0);
CREATE TABLE IF NOT EXISTS conveyor_rates (
    key TEXT PRIMARY KEY,
    tat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS conveyor_workers (
    name         TEXT PRIMARY KEY,
    info         BLOB NOT NULL,
    heartbeat_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS conveyor_events (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL
);

-- name: columns
SELECT name FROM pragma_table_info('conveyor_messages');

-- name: upgrade_v2
-- Files written before at-most-once runs, revocation and dead-letter details.
ALTER TABLE conveyor_messages ADD COLUMN begun INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conveyor_messages ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conveyor_messages ADD COLUMN terminate INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conveyor_messages ADD COLUMN last_error TEXT;
ALTER TABLE conveyor_messages ADD COLUMN updated_at REAL;

-- name: insert
INSERT INTO conveyor_messages
    (id, queue, priority, state, available_at, body, max_deliveries, updated_at)
VALUES (:id, :queue, :priority, :state, :available_at, :body, :max_deliveries, :available_at)
ON CONFLICT (id) DO NOTHING;

-- name: forget_done
DELETE FROM conveyor_messages WHERE state = 4 AND done_at < :cutoff;

-- name: probe
-- Read-only: is anything due in this queue, and when is the next scheduled or lease expiry?
SELECT
    EXISTS (SELECT 1 FROM conveyor_messages WHERE state = 0 AND queue = :queue),
    (SELECT min(available_at) FROM conveyor_messages WHERE state = 1),
    (SELECT min(lease_expires) FROM conveyor_messages WHERE state = 2);

-- name: promote_due
UPDATE conveyor_messages SET state = 0 WHERE state = 1 AND available_at <= :now;

-- name: reclaim_expired
-- A lease that ran out makes its message due again, or dead once it has been lost
-- max_deliveries times (a revoked one always comes back, to be recorded as revoked).
-- SQLite evaluates every SET expression on the old row.
UPDATE conveyor_messages
SET state  = CASE WHEN lost + 1 >= max_deliveries AND NOT revoked THEN 3 ELSE 0 END,
    reason = CASE WHEN lost + 1 >= max_deliveries AND NOT revoked
                  THEN 'lease expired ' || (lost + 1) || ' times (max_deliveries)'
                  ELSE reason END,
    available_at = min(available_at, :now),
    updated_at = :now,
    lost   = lost + 1
WHERE state = 2 AND lease_expires <= :now;

-- name: next_token
UPDATE conveyor_counters SET value = value + 1 WHERE name = 'lease' RETURNING value;

-- name: ready_in_queue
SELECT seq, priority, available_at FROM conveyor_messages
WHERE state = 0 AND queue = :queue
ORDER BY priority DESC, available_at, seq
LIMIT :limit;

-- name: grant
UPDATE conveyor_messages
SET state = 2, token = :token, lease_expires = :expires, deliveries = deliveries + 1
WHERE seq IN (SELECT value FROM json_each(:seqs)) AND state = 0
RETURNING seq, id, queue, priority, available_at, body, max_deliveries, deliveries, begun,
          revoked, terminate;

-- name: extend
UPDATE conveyor_messages SET lease_expires = :expires
WHERE id = :id AND state = 2 AND token = :token AND lease_expires > :now
RETURNING revoked, terminate;

-- name: confirm
-- Read-only: which leases of :leases (a JSON array of [id, token] pairs) are still held — the
-- current grant of their message, not expired at :now. Looked up by the unique id.
SELECT m.id, m.token
FROM json_each(:leases) AS j
JOIN conveyor_messages AS m
  ON m.id = json_extract(j.value, '$[0]') AND m.token = json_extract(j.value, '$[1]')
WHERE m.state = 2 AND m.lease_expires > :now;

-- name: ack
UPDATE conveyor_messages SET state = 4, body = NULL, done_at = :now
WHERE id = :id AND state = 2 AND token = :token AND lease_expires > :now;

-- name: release
-- :lost is 1 for a run that was cut off (counts toward max_deliveries), :unstarted 1 for a
-- delivery given back without running (not counted as a delivery).
UPDATE conveyor_messages
SET state = CASE WHEN :lost AND lost + 1 >= max_deliveries AND NOT revoked THEN 3
                 WHEN :delay > 0 THEN 1 ELSE 0 END,
    reason = CASE WHEN :lost AND lost + 1 >= max_deliveries AND NOT revoked
                  THEN 'run lost ' || (lost + 1) || ' times (max_deliveries)'
                  ELSE reason END,
    lost = lost + :lost,
    deliveries = deliveries - :unstarted,
    available_at = :now + :delay,
    body = coalesce(:body, body),
    last_error = coalesce(:error, last_error),
    updated_at = :now
WHERE id = :id AND state = 2 AND token = :token AND lease_expires > :now;

-- name: dead_letter
UPDATE conveyor_messages SET state = 3, reason = :reason, updated_at = :now
WHERE id = :id AND state = 2 AND token = :token AND lease_expires > :now;

-- name: begin
UPDATE conveyor_messages SET begun = 1
WHERE id = :id AND state = 2 AND token = :token AND lease_expires > :now;

-- name: throttle
-- Take the next start slot: the later of now and the stored slot; the stored one moves on.
INSERT INTO conveyor_rates (key, tat) VALUES (:key, :now + :interval)
ON CONFLICT (key) DO UPDATE SET tat = max(tat, :now) + :interval
RETURNING tat - :interval;

-- name: revoke_leased
UPDATE conveyor_messages SET revoked = 1, terminate = max(terminate, :terminate)
WHERE id = :id AND state = 2;

-- name: revoke_waiting
-- Waiting or dead: becomes a tombstone, so it is never delivered and a re-enqueue is a no-op.
UPDATE conveyor_messages SET state = 4, body = NULL, done_at = :now, reason = 'revoked'
WHERE id = :id AND state IN (0, 1, 3);

-- name: revoke_unknown
INSERT INTO conveyor_messages
    (id, queue, priority, state, available_at, max_deliveries, done_at, reason, updated_at)
VALUES (:id, '', 0, 4, :now, 1, :now, 'revoked', :now)
ON CONFLICT (id) DO NOTHING;

-- name: register_worker
INSERT INTO conveyor_workers (name, info, heartbeat_at) VALUES (:name, :info, :heartbeat_at)
ON CONFLICT (name) DO UPDATE SET info = excluded.info, heartbeat_at = excluded.heartbeat_at;

-- name: forget_workers
DELETE FROM conveyor_workers WHERE heartbeat_at < :cutoff;

-- name: workers
SELECT info FROM conveyor_workers ORDER BY name;

-- name: publish_event
INSERT INTO conveyor_events (body) VALUES (:body);

-- name: trim_events
-- After a batch: keep the newest :limit rows (ids are consecutive, so this is a range delete
-- on the primary key of exactly the rows that fell off).
DELETE FROM conveyor_events WHERE id <= (SELECT max(id) FROM conveyor_events) - :limit;

-- name: events_after
SELECT id, body FROM conveyor_events WHERE id > :after ORDER BY id LIMIT :limit;

-- name: newest_events
SELECT id, body FROM (SELECT id, body FROM conveyor_events ORDER BY id DESC LIMIT :limit)
ORDER BY id;

-- name: queue_stats
-- Counts per queue, and the age (at :now) of its oldest ready message, found through the
-- indexes: the head of each priority band of the ready index (0-9, the priorities conveyor
-- sends), and the earliest scheduled row already due (a range of the scheduled index over
-- the rows not promoted yet).
WITH counts AS MATERIALIZED (
    SELECT queue,
           sum(state = 0 OR (state = 1 AND available_at <= :now)) AS ready,
           sum(state = 1 AND available_at > :now) AS scheduled,
           sum(state = 2) AS leased,
           sum(state = 3) AS dead
    FROM conveyor_messages WHERE state < 4
    GROUP BY queue
),
bands(priority) AS (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)),
heads AS MATERIALIZED (
    SELECT c.queue AS queue,
           (SELECT m.available_at FROM conveyor_messages AS m
            WHERE m.state = 0 AND m.queue = c.queue AND m.priority = b.priority
            ORDER BY m.priority DESC, m.available_at LIMIT 1) AS at
    FROM counts AS c, bands AS b
    UNION ALL
    SELECT queue, min(available_at) FROM conveyor_messages INDEXED BY conveyor_messages_scheduled
    WHERE state = 1 AND available_at <= :now
    GROUP BY queue
)
SELECT c.queue, c.ready, c.scheduled, c.leased, c.dead,
       coalesce(max(0.0, :now - min(h.at)), 0.0)
FROM counts AS c LEFT JOIN heads AS h ON h.queue = c.queue
GROUP BY c.queue ORDER BY c.queue;

-- name: list_messages
SELECT id, queue, priority, state, available_at, body, max_deliveries, deliveries, reason,
       last_error, updated_at
FROM conveyor_messages
WHERE queue = :queue AND state < 4
ORDER BY priority DESC, available_at, seq
LIMIT :limit OFFSET :offset;

-- name: get_message
SELECT id, queue, priority, state, available_at, body, max_deliveries, deliveries, reason,
       last_error, updated_at
FROM conveyor_messages
WHERE id = :id AND state < 4;

-- name: list_messages_in_state
SELECT id, queue, priority, state, available_at, body, max_deliveries, deliveries, reason,
       last_error, updated_at
FROM conveyor_messages
WHERE queue = :queue AND state = :state
ORDER BY priority DESC, available_at, seq
LIMIT :limit OFFSET :offset;

-- name: redrive
UPDATE conveyor_messages
SET state = 0, available_at = :now, lost = 0, reason = NULL, begun = 0, updated_at = :now
WHERE id = :id AND state = 3;

-- name: purge_dead
DELETE FROM conveyor_messages
WHERE state = 3 AND updated_at <= :cutoff
  AND (:all_queues OR queue IN (SELECT value FROM json_each(:queues)));

-- name: purge
DELETE FROM conveyor_messages
WHERE queue IN (SELECT value FROM json_each(:queues))
  AND (state IN (0, 1) OR (:include_dead AND state = 3));
