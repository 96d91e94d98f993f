-- 0004: chord joins (see results/base.py, "Chord joins").
--
-- conveyor_chord_members  one row per member of a chord that succeeded; a member joining twice
--                         (redelivered, ran again) stays one row. Joins of one chord are
--                         serialised by a transaction-scoped advisory lock on the chord id, so
--                         the member that completes the set sees the full count.

CREATE TABLE conveyor_chord_members (
    chord_id    text NOT NULL,
    member_id   text NOT NULL,
    expires_at  double precision,
    PRIMARY KEY (chord_id, member_id)
);
