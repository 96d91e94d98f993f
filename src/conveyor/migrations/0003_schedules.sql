-- 0003: the scheduler's tables (see scheduler/stores/base.py for the contract).
--
-- conveyor_schedule     one row per entry: its JSON definition (opaque to the database), where
--                       it comes from ('config': beat_schedule, synced at every scheduler
--                       start; 'runtime': `conveyor schedule add`), the paused flag, anchor
--                       (when first stored), last_fire (scheduled time of the last fire sent
--                       or skipped) and the fired / skipped counters
-- conveyor_beat_leader  one row (id = 1): who holds the leader lease, until when (the
--                       database's clock), and the lease's term (grows on each change of holder)

CREATE TABLE conveyor_schedule (
    name        text PRIMARY KEY,
    definition  text NOT NULL,
    source      text NOT NULL CHECK (source IN ('config', 'runtime')),
    paused      boolean NOT NULL DEFAULT false,
    anchor      double precision NOT NULL,
    last_fire   double precision,
    fires       bigint NOT NULL DEFAULT 0,
    skipped     bigint NOT NULL DEFAULT 0,
    updated_at  double precision NOT NULL
);

CREATE TABLE conveyor_beat_leader (
    id          integer PRIMARY KEY CHECK (id = 1),
    holder      text,
    expires_at  double precision NOT NULL,
    term        bigint NOT NULL
);
