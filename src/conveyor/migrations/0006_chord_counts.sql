-- 0006: a count per chord, so that a join reads one row instead of counting the header.
--
-- conveyor_chord_counts  one row per chord: `joined`, its number of member rows in
--                        conveyor_chord_members, kept by the trigger conveyor_chord_joined in
--                        the transaction of each member insert (whoever inserts: a worker of
--                        an earlier release too); `expires_at`, refreshed by every join, is when
--                        the chord's joins expire together (its members are then deleted with
--                        it). The members' own expires_at is kept but no longer read.
-- Chords in flight are counted from their member rows here, once.

CREATE TABLE conveyor_chord_counts (
    chord_id    text PRIMARY KEY,
    joined      integer NOT NULL,
    expires_at  double precision
);
CREATE INDEX conveyor_chord_counts_expires ON conveyor_chord_counts (expires_at);

INSERT INTO conveyor_chord_counts (chord_id, joined, expires_at)
SELECT chord_id, count(*),
       CASE WHEN count(expires_at) < count(*) THEN NULL ELSE max(expires_at) END
FROM conveyor_chord_members GROUP BY chord_id;

-- The count table is named through the trigger's own schema: the function body does not
-- depend on the caller's search_path.
CREATE FUNCTION conveyor_chord_joined() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'INSERT INTO %I.conveyor_chord_counts AS c (chord_id, joined, expires_at) '
        'VALUES ($1, 1, $2) ON CONFLICT (chord_id) '
        'DO UPDATE SET joined = c.joined + 1, expires_at = excluded.expires_at',
        TG_TABLE_SCHEMA
    ) USING NEW.chord_id, NEW.expires_at;
    RETURN NULL;
END
$$;

CREATE TRIGGER conveyor_chord_joined AFTER INSERT ON conveyor_chord_members
    FOR EACH ROW EXECUTE FUNCTION conveyor_chord_joined();
