-- The SQLite schedule store: statements loaded by name (see conveyor/sqlfiles.py).
--
-- conveyor_schedule     one row per entry: its JSON definition (opaque here), where it comes
--                       from ('config' or 'runtime'), paused flag, anchor (first stored),
--                       last_fire (scheduled time of the last fire sent or skipped), counters
-- conveyor_beat_leader  one row (id = 1): who holds the leader lease, until when, and the
--                       lease's term (grows each time the holder changes)
-- Times are epoch seconds from the store's clock (:now).

-- name: schema
CREATE TABLE IF NOT EXISTS conveyor_schedule (
    name        TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,
    source      TEXT NOT NULL,
    paused      INTEGER NOT NULL DEFAULT 0,
    anchor      REAL NOT NULL,
    last_fire   REAL,
    fires       INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS conveyor_beat_leader (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT,
    expires_at  REAL NOT NULL,
    term        INTEGER NOT NULL
);

-- name: source_of
SELECT source FROM conveyor_schedule WHERE name = :name;

-- name: upsert
INSERT INTO conveyor_schedule (name, definition, source, anchor, updated_at)
VALUES (:name, :definition, :source, :now, :now)
ON CONFLICT (name) DO UPDATE
   SET definition = excluded.definition, source = excluded.source, updated_at = excluded.updated_at
 WHERE definition <> excluded.definition OR source <> excluded.source;

-- name: drop_stale_config
DELETE FROM conveyor_schedule
 WHERE source = 'config' AND name NOT IN (SELECT value FROM json_each(:names));

-- name: remove
DELETE FROM conveyor_schedule WHERE name = :name;

-- name: set_paused
UPDATE conveyor_schedule SET paused = :paused, updated_at = :now WHERE name = :name;

-- name: entries
SELECT name, definition, source, paused, anchor, last_fire, fires, skipped, updated_at
  FROM conveyor_schedule ORDER BY name;

-- name: advance
UPDATE conveyor_schedule
   SET last_fire = :last_fire, fires = fires + :fired, skipped = skipped + :skipped
 WHERE name = :name AND last_fire IS :expected;

-- name: lead
INSERT INTO conveyor_beat_leader (id, holder, expires_at, term)
VALUES (1, :holder, :now + :ttl, 1)
ON CONFLICT (id) DO UPDATE
   SET term = term + (holder IS NOT :holder), holder = :holder, expires_at = :now + :ttl
 WHERE holder = :holder OR holder IS NULL OR expires_at <= :now;

-- name: leadership
SELECT holder, expires_at, term FROM conveyor_beat_leader WHERE id = 1;

-- name: resign
UPDATE conveyor_beat_leader SET holder = NULL, expires_at = 0 WHERE holder = :holder;
