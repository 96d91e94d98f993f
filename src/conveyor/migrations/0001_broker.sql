-- 0001: the broker's tables, and the clock function every statement uses.
--
-- conveyor_now(given)  `given` when a clock is injected (tests), else the transaction's time:
--                      the database's clock is the only clock producers and workers share.
-- conveyor_lease_tokens  fencing tokens: one nextval per reserve batch or revocation, so a
--                        grant's token is larger than any granted before (sequences never
--                        go back, even when a transaction rolls back).
-- conveyor_messages    one row per envelope; `seq` is the enqueue order, `id` the message id.
--     state  0 ready      due; claimed in (priority DESC, available_at, seq) order
--            1 scheduled  due at available_at; promoted to 0 by `maintain`
--            2 leased     held until lease_expires under fencing token `token`
--            3 dead       dead-lettered with `reason`
--            4 done       acknowledged or revoked: body dropped, id kept until done_at plus
--                         the idempotency window, so enqueueing the same id stays a no-op
--     deliveries  grants so far (the attempt number of the latest grant)
--     lost        runs cut off (expired lease, or released as lost); at max_deliveries the
--                 row goes dead
--     begun / revoked / terminate  at-most-once run started / revoked while leased / kill it
-- conveyor_rates       one row per rate-limit key: `tat`, the next free start slot
-- conveyor_workers     one row per worker name: its published WorkerInfo (JSON)

CREATE FUNCTION conveyor_now(given double precision) RETURNS double precision
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(given, extract(epoch FROM transaction_timestamp())::double precision) $$;

CREATE SEQUENCE conveyor_lease_tokens AS bigint;

CREATE TABLE conveyor_messages (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             text NOT NULL UNIQUE,
    queue          text NOT NULL,
    priority       smallint NOT NULL,
    state          smallint NOT NULL,
    available_at   double precision NOT NULL,
    body           bytea,
    max_deliveries integer NOT NULL,
    deliveries     integer NOT NULL DEFAULT 0,
    lost           integer NOT NULL DEFAULT 0,
    token          bigint NOT NULL DEFAULT 0,
    lease_expires  double precision NOT NULL DEFAULT 0,
    reason         text,
    done_at        double precision,
    begun          boolean NOT NULL DEFAULT false,
    revoked        boolean NOT NULL DEFAULT false,
    terminate      boolean NOT NULL DEFAULT false,
    last_error     text,
    updated_at     double precision
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

CREATE INDEX conveyor_messages_ready
    ON conveyor_messages (queue, priority DESC, available_at, seq) WHERE state = 0;
CREATE INDEX conveyor_messages_scheduled
    ON conveyor_messages (available_at) WHERE state = 1;
CREATE INDEX conveyor_messages_leased
    ON conveyor_messages (lease_expires) WHERE state = 2;
CREATE INDEX conveyor_messages_done
    ON conveyor_messages (done_at) WHERE state = 4;
CREATE INDEX conveyor_messages_queue_state
    ON conveyor_messages (queue, state) WHERE state < 4;

CREATE TABLE conveyor_rates (
    key text PRIMARY KEY,
    tat double precision NOT NULL
);

CREATE TABLE conveyor_workers (
    name         text PRIMARY KEY,
    info         bytea NOT NULL,
    heartbeat_at double precision NOT NULL
);
