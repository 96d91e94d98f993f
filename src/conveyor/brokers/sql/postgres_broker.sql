-- PostgreSQL broker. The tables are created by migrations/0001_broker.sql, whose header
-- documents the layout (conveyor_messages, conveyor_lease_tokens, conveyor_rates,
-- conveyor_workers); the event stream's tables (conveyor_events, conveyor_event_counter) come
-- from migrations/0007_events.sql. Every statement here is one atomic statement unless the broker runs it
-- inside a transaction of its own (revoke). %(now)s is NULL unless a clock is injected:
-- conveyor_now() then reads the database's clock.
--
-- Claims lock their rows with FOR UPDATE SKIP LOCKED inside the UPDATE that grants them, so
-- concurrent workers never wait on, nor take, each other's rows. Wake-ups: statements that
-- make a message ready NOTIFY the schema's channel; idle workers LISTEN on it.

-- name: enqueue
-- One statement for a batch: all rows or none. An id already stored is skipped.
WITH t AS (SELECT conveyor_now(%(now)s) AS now),
ins AS (
    INSERT INTO conveyor_messages
        (id, queue, priority, state, available_at, body, max_deliveries, updated_at)
    SELECT u.id, u.queue, u.priority, CASE WHEN u.delay > 0 THEN 1 ELSE 0 END,
           t.now + u.delay, u.body, u.max_deliveries, t.now
    FROM t, unnest(%(ids)s::text[], %(queues)s::text[], %(priorities)s::smallint[],
                   %(delays)s::float8[], %(bodies)s::bytea[], %(max_deliveries)s::int[])
         AS u(id, queue, priority, delay, body, max_deliveries)
    ON CONFLICT (id) DO NOTHING
    RETURNING id, state
),
woke AS (SELECT pg_notify(%(channel)s, '') FROM (SELECT 1 FROM ins WHERE state = 0 LIMIT 1) r)
SELECT id, (SELECT count(*) FROM woke) FROM ins;

-- name: forget_done
DELETE FROM conveyor_messages
WHERE state = 4 AND done_at < conveyor_now(%(now)s) - %(window)s::float8;

-- name: forget_workers
DELETE FROM conveyor_workers WHERE heartbeat_at < conveyor_now(%(now)s) - %(retention)s::float8;

-- name: maintain
-- Promote due scheduled messages, and take back expired leases: due again, or dead once the
-- message was lost max_deliveries times (a revoked one always comes back, to be recorded as
-- revoked). Bounded per call; rows another worker is handling are skipped, not waited for.
WITH t AS (SELECT conveyor_now(%(now)s) AS now),
promoted AS (
    UPDATE conveyor_messages m SET state = 0
    WHERE m.seq = ANY(ARRAY(
        SELECT seq FROM conveyor_messages, t
        WHERE state = 1 AND available_at <= t.now
        ORDER BY available_at LIMIT 1000 FOR UPDATE SKIP LOCKED))
      AND m.state = 1
    RETURNING 1
),
reclaimed AS (
    UPDATE conveyor_messages m
    SET state = CASE WHEN m.lost + 1 >= m.max_deliveries AND NOT m.revoked THEN 3 ELSE 0 END,
        reason = CASE WHEN m.lost + 1 >= m.max_deliveries AND NOT m.revoked
                      THEN 'lease expired ' || (m.lost + 1) || ' times (max_deliveries)'
                      ELSE m.reason END,
        available_at = least(m.available_at, t.now),
        updated_at = t.now,
        lost = m.lost + 1
    FROM t
    WHERE m.seq = ANY(ARRAY(
        SELECT seq FROM conveyor_messages, t
        WHERE state = 2 AND lease_expires <= t.now
        ORDER BY lease_expires LIMIT 1000 FOR UPDATE SKIP LOCKED))
      AND m.state = 2 AND m.lease_expires <= t.now
    RETURNING m.state
)
SELECT (SELECT count(*) FROM promoted) + (SELECT count(*) FROM reclaimed WHERE state = 0);

-- name: claim
-- Lease up to %(limit)s ready messages of one queue in reserve order, under one new token.
WITH t AS (SELECT conveyor_now(%(now)s) AS now, nextval('conveyor_lease_tokens') AS token)
UPDATE conveyor_messages m
SET state = 2, token = t.token, lease_expires = t.now + %(lease_for)s::float8,
    deliveries = m.deliveries + 1
FROM t
WHERE m.seq = ANY(ARRAY(
    SELECT seq FROM conveyor_messages
    WHERE state = 0 AND queue = %(queue)s
    ORDER BY priority DESC, available_at, seq
    LIMIT %(limit)s FOR UPDATE SKIP LOCKED))
  AND m.state = 0
RETURNING m.id, m.queue, m.priority, m.body, m.max_deliveries, m.deliveries, m.begun,
          m.revoked, m.terminate, t.token, m.lease_expires, m.available_at, m.seq;

-- name: next_due
-- Seconds until the next scheduled message or lease expiry (NULL: none), for idle waits.
SELECT least(
    (SELECT min(available_at) FROM conveyor_messages WHERE state = 1),
    (SELECT min(lease_expires) FROM conveyor_messages WHERE state = 2)
) - conveyor_now(%(now)s);

-- name: extend
WITH t AS (SELECT conveyor_now(%(now)s) AS now)
UPDATE conveyor_messages m SET lease_expires = t.now + %(lease_for)s::float8
FROM t, unnest(%(ids)s::text[], %(tokens)s::bigint[]) AS u(id, token)
WHERE m.id = u.id AND m.state = 2 AND m.token = u.token AND m.lease_expires > t.now
RETURNING m.id, m.revoked, m.terminate, m.lease_expires;

-- name: confirm
-- Read-only: which of the (id, token) pairs are still held — the current grant of their
-- message, not expired on the database's clock.
SELECT m.id, m.token
FROM unnest(%(ids)s::text[], %(tokens)s::bigint[]) AS u(id, token)
JOIN conveyor_messages m ON m.id = u.id AND m.token = u.token
WHERE m.state = 2 AND m.lease_expires > conveyor_now(%(now)s);

-- name: ack
WITH t AS (SELECT conveyor_now(%(now)s) AS now)
UPDATE conveyor_messages m SET state = 4, body = NULL, done_at = t.now
FROM t, unnest(%(ids)s::text[], %(tokens)s::bigint[]) AS u(id, token)
WHERE m.id = u.id AND m.state = 2 AND m.token = u.token AND m.lease_expires > t.now
RETURNING m.id;

-- name: release
-- %(lost)s: a run that was cut off (counts toward max_deliveries); %(unstarted)s: given back
-- without running (the delivery is not counted).
WITH t AS (SELECT conveyor_now(%(now)s) AS now),
up AS (
    UPDATE conveyor_messages m
    SET state = CASE WHEN %(lost)s AND m.lost + 1 >= m.max_deliveries AND NOT m.revoked THEN 3
                     WHEN %(delay)s::float8 > 0 THEN 1 ELSE 0 END,
        reason = CASE WHEN %(lost)s AND m.lost + 1 >= m.max_deliveries AND NOT m.revoked
                      THEN 'run lost ' || (m.lost + 1) || ' times (max_deliveries)'
                      ELSE m.reason END,
        lost = m.lost + CASE WHEN %(lost)s THEN 1 ELSE 0 END,
        deliveries = m.deliveries - CASE WHEN %(unstarted)s THEN 1 ELSE 0 END,
        available_at = t.now + %(delay)s::float8,
        body = coalesce(%(body)s::bytea, m.body),
        last_error = coalesce(%(error)s::text, m.last_error),
        updated_at = t.now
    FROM t
    WHERE m.id = %(id)s AND m.state = 2 AND m.token = %(token)s AND m.lease_expires > t.now
    RETURNING m.state
),
woke AS (SELECT pg_notify(%(channel)s, '') FROM (SELECT 1 FROM up WHERE state = 0) r)
SELECT count(*), (SELECT count(*) FROM woke) FROM up;

-- name: dead_letter
WITH t AS (SELECT conveyor_now(%(now)s) AS now)
UPDATE conveyor_messages m SET state = 3, reason = %(reason)s, updated_at = t.now
FROM t
WHERE m.id = %(id)s AND m.state = 2 AND m.token = %(token)s AND m.lease_expires > t.now
RETURNING m.id;

-- name: begin
WITH t AS (SELECT conveyor_now(%(now)s) AS now)
UPDATE conveyor_messages m SET begun = true
FROM t, unnest(%(ids)s::text[], %(tokens)s::bigint[]) AS u(id, token)
WHERE m.id = u.id AND m.state = 2 AND m.token = u.token AND m.lease_expires > t.now
RETURNING m.id;

-- name: throttle
-- Take the next start slot: the later of now and the stored slot; the stored one moves on.
-- Returns the seconds from now until the slot taken.
WITH t AS (SELECT conveyor_now(%(now)s) AS now)
INSERT INTO conveyor_rates AS r (key, tat)
SELECT %(key)s, t.now + %(interval)s::float8 FROM t
ON CONFLICT (key) DO UPDATE
    SET tat = greatest(r.tat, excluded.tat - %(interval)s::float8) + %(interval)s::float8
RETURNING r.tat - %(interval)s::float8 - (SELECT now FROM t);

-- name: revoke_leased
UPDATE conveyor_messages SET revoked = true, terminate = terminate OR %(terminate)s
WHERE id = %(id)s AND state = 2;

-- name: revoke_waiting
-- Waiting or dead: becomes a tombstone, so it is never delivered and a re-enqueue is a no-op.
UPDATE conveyor_messages
SET state = 4, body = NULL, done_at = conveyor_now(%(now)s), reason = 'revoked'
WHERE id = %(id)s AND state IN (0, 1, 3);

-- name: revoke_unknown
INSERT INTO conveyor_messages
    (id, queue, priority, state, available_at, max_deliveries, done_at, reason, updated_at)
SELECT %(id)s, '', 0, 4, t.now, 1, t.now, 'revoked', t.now
FROM (SELECT conveyor_now(%(now)s) AS now) t
ON CONFLICT (id) DO NOTHING;

-- name: next_token
SELECT nextval('conveyor_lease_tokens');

-- name: register_worker
INSERT INTO conveyor_workers (name, info, heartbeat_at) VALUES (%(name)s, %(info)s, %(heartbeat_at)s)
ON CONFLICT (name) DO UPDATE SET info = excluded.info, heartbeat_at = excluded.heartbeat_at;

-- name: workers
SELECT info FROM conveyor_workers ORDER BY name;

-- name: queue_stats
-- Counts per queue, and the age of its oldest ready message, found through the indexes: the
-- head of each priority band of the ready index (0-9, the priorities conveyor sends), and the
-- earliest scheduled row already due (a range of the scheduled index over the rows `maintain`
-- has not promoted yet).
WITH t AS (SELECT conveyor_now(%(now)s) AS now),
counts AS (
    SELECT queue,
           count(*) FILTER (WHERE state = 0 OR (state = 1 AND available_at <= t.now)) AS ready,
           count(*) FILTER (WHERE state = 1 AND available_at > t.now) AS scheduled,
           count(*) FILTER (WHERE state = 2) AS leased,
           count(*) FILTER (WHERE state = 3) AS dead
    FROM conveyor_messages, t WHERE state < 4
    GROUP BY queue
),
due AS (
    SELECT queue, min(available_at) AS at
    FROM conveyor_messages, t WHERE state = 1 AND available_at <= t.now
    GROUP BY queue
)
SELECT c.queue, c.ready, c.scheduled, c.leased, c.dead,
       coalesce(greatest(0.0, t.now - least(
           (SELECT min(h.available_at)
            FROM generate_series(0, 9) AS b(priority)
            CROSS JOIN LATERAL (
                SELECT m.available_at FROM conveyor_messages AS m
                WHERE m.state = 0 AND m.queue = c.queue AND m.priority = b.priority
                ORDER BY m.priority DESC, m.available_at LIMIT 1
            ) AS h),
           d.at)), 0.0)
FROM counts AS c CROSS JOIN t LEFT JOIN due AS d ON d.queue = c.queue
ORDER BY c.queue;

-- name: list_messages
-- %(state)s: NULL for every state; scheduled rows already due count as ready (0).
WITH t AS (SELECT conveyor_now(%(now)s) AS now)
SELECT * FROM (
    SELECT id, queue, priority,
           CASE WHEN state = 1 AND available_at <= t.now THEN 0 ELSE state END AS shown,
           available_at, body, max_deliveries, deliveries, reason, last_error, updated_at, seq
    FROM conveyor_messages, t
    WHERE queue = %(queue)s AND state < 4
) s
WHERE %(state)s::smallint IS NULL OR shown = %(state)s::smallint
ORDER BY priority DESC, available_at, seq
LIMIT %(limit)s OFFSET %(offset)s;

-- name: get_message
WITH t AS (SELECT conveyor_now(%(now)s) AS now)
SELECT id, queue, priority,
       CASE WHEN state = 1 AND available_at <= t.now THEN 0 ELSE state END,
       available_at, body, max_deliveries, deliveries, reason, last_error, updated_at, seq
FROM conveyor_messages, t
WHERE id = %(id)s AND state < 4;

-- name: redrive
WITH t AS (SELECT conveyor_now(%(now)s) AS now),
up AS (
    UPDATE conveyor_messages m
    SET state = 0, available_at = t.now, lost = 0, reason = NULL, begun = false,
        updated_at = t.now
    FROM t
    WHERE m.id = ANY(%(ids)s::text[]) AND m.state = 3
    RETURNING 1
),
woke AS (SELECT pg_notify(%(channel)s, '') FROM (SELECT 1 FROM up LIMIT 1) r)
SELECT count(*), (SELECT count(*) FROM woke) FROM up;

-- name: purge_dead
DELETE FROM conveyor_messages
WHERE state = 3 AND updated_at <= conveyor_now(%(now)s) - %(older_than)s::float8
  AND (%(all_queues)s OR queue = ANY(%(queues)s::text[]));

-- name: purge
DELETE FROM conveyor_messages
WHERE queue = ANY(%(queues)s::text[])
  AND (state IN (0, 1) OR (%(include_dead)s AND state = 3));

-- name: take_event_positions
-- First statement of a publish's transaction: reserves positions last-n+1 .. last and holds
-- the counter row's lock until commit, so publishes commit in position order.
UPDATE conveyor_event_counter SET last = last + %(n)s RETURNING last;

-- name: store_events
-- Second statement of the publish: the batch at its positions, then the rows past the limit
-- (the batch's own rows are never among them: the broker sends at most `limit` bodies).
WITH ins AS (
    INSERT INTO conveyor_events (id, body)
    SELECT %(last)s::bigint - %(n)s + u.ord, u.body
    FROM unnest(%(bodies)s::bytea[]) WITH ORDINALITY AS u(body, ord)
)
DELETE FROM conveyor_events WHERE id <= %(last)s::bigint - %(limit)s;

-- name: events_after
SELECT id, body FROM conveyor_events WHERE id > %(after)s ORDER BY id LIMIT %(limit)s;

-- name: newest_events
SELECT id, body FROM (SELECT id, body FROM conveyor_events ORDER BY id DESC LIMIT %(limit)s) n
ORDER BY id;
