-- 0005: result_extended (see results/base.py, Outcome.arguments).
--
-- conveyor_results.arguments  JSON {"args", "kwargs"} of the call, written only when the
--                             worker runs with result_extended; NULL otherwise.

ALTER TABLE conveyor_results ADD COLUMN arguments bytea;
