-- 0007: the cluster's event stream (`conveyor events`).
--
-- conveyor_events         one row per encoded event: `id` its position in the stream, `body`
--                         the event (JSON). Only the newest rows up to the broker's limit are
--                         kept: each publish deletes by id the rows that fell off.
-- conveyor_event_counter  one row: `last`, the position given to the newest event. A publish
--                         takes its positions by updating it, which holds the row's lock until
--                         it commits: publishers are serialized, so positions are consecutive
--                         and committed in order, and a reader paging by id never skips a row
--                         that a slower publisher commits later (a sequence would allow that).

CREATE TABLE conveyor_events (
    id    bigint PRIMARY KEY,
    body  bytea NOT NULL
);

CREATE TABLE conveyor_event_counter (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    last  bigint NOT NULL
);
INSERT INTO conveyor_event_counter (last) VALUES (0);
