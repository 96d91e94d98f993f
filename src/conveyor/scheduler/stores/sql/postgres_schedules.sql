-- The PostgreSQL schedule store: statements loaded by name (see conveyor/sqlfiles.py). The
-- tables come from migrations/0003_schedules.sql, whose header documents them. %(now)s is
-- NULL unless a clock is injected: conveyor_now() then reads the database's clock, so the
-- lease expires on one clock however many machines run schedulers.

-- name: source_of
SELECT source FROM conveyor_schedule WHERE name = %(name)s FOR UPDATE;

-- name: upsert
INSERT INTO conveyor_schedule AS s (name, definition, source, anchor, updated_at)
VALUES (%(name)s, %(definition)s, %(source)s, conveyor_now(%(now)s), conveyor_now(%(now)s))
ON CONFLICT (name) DO UPDATE
   SET definition = excluded.definition, source = excluded.source, updated_at = excluded.updated_at
 WHERE s.definition <> excluded.definition OR s.source <> excluded.source;

-- name: drop_stale_config
DELETE FROM conveyor_schedule WHERE source = 'config' AND name <> ALL(%(names)s::text[]);

-- name: remove
DELETE FROM conveyor_schedule WHERE name = %(name)s;

-- name: set_paused
UPDATE conveyor_schedule SET paused = %(paused)s, updated_at = conveyor_now(%(now)s)
 WHERE name = %(name)s;

-- name: entries
SELECT name, definition, source, paused, anchor, last_fire, fires, skipped, updated_at
  FROM conveyor_schedule ORDER BY name;

-- name: advance
UPDATE conveyor_schedule
   SET last_fire = %(last_fire)s, fires = fires + %(fired)s, skipped = skipped + %(skipped)s
 WHERE name = %(name)s AND last_fire IS NOT DISTINCT FROM %(expected)s::float8;

-- name: lead
-- Takes the lease when it is free, expired or already the caller's; concurrent callers queue
-- on the row lock and re-check the condition against the row the winner left.
INSERT INTO conveyor_beat_leader AS l (id, holder, expires_at, term)
VALUES (1, %(holder)s, conveyor_now(%(now)s) + %(ttl)s, 1)
ON CONFLICT (id) DO UPDATE
   SET term = l.term + (l.holder IS DISTINCT FROM %(holder)s)::int,
       holder = %(holder)s, expires_at = conveyor_now(%(now)s) + %(ttl)s
 WHERE l.holder = %(holder)s OR l.holder IS NULL OR l.expires_at <= conveyor_now(%(now)s);

-- name: leadership
SELECT holder, expires_at, term, conveyor_now(%(now)s)
  FROM (SELECT 1) AS one LEFT JOIN conveyor_beat_leader ON id = 1;

-- name: resign
UPDATE conveyor_beat_leader SET holder = NULL, expires_at = 0 WHERE holder = %(holder)s;
