"""PostgreSQL benchmark: conveyor beside procrastinate, in databases of their own on the same
server, in the same run, each with 2 worker processes.

    pip install -e ".[bench]"
    python bench/postgres_bench.py [--tasks 20000] [--rounds 3]

Per system and round, on a fresh database (created by this run, dropped after):
  * enqueue (single) — one producer deferring no-ops one at a time;
  * enqueue (batch)  — `app.send_many` / procrastinate's `batch_defer`;
  * processing       — N no-ops queued, then the workers started; rate from the first finished
                       task to the last (start-up excluded);
  * peak RSS         — summed over the worker processes and their children.
Conveyor stores an outcome for every task; procrastinate only marks its job row succeeded.
Medians over rounds; a ratio above 1 means conveyor is better.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import psycopg  # noqa: E402
from redis_bench import RssSampler, rate, wait_for, workers  # noqa: E402

SERVER = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


class Database:
    """A database of this run's own: created empty, dropped at the end."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = f"{SERVER}/{name}"
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')

    def drop(self) -> None:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Conveyor:
    name = "conveyor"

    def __init__(self, db: Database) -> None:
        os.environ["CONVEYOR_BROKER_URL"] = db.url
        self.env = {**os.environ, "PYTHONPATH": str(HERE)}
        import conveyor_app

        self.mod = conveyor_app
        self.app, self.noop = conveyor_app.app, conveyor_app.noop
        self.app.close()  # a fresh connection to this round's database
        self.app._broker_arg = db.url

    def send(self, n: int) -> None:
        for _ in range(n):
            self.noop.delay()

    def send_batch(self, n: int) -> None:
        self.app.send_many(self.noop, [()] * n)

    def workers(self) -> list[list[str]]:
        return self.mod.worker_commands()

    def finished(self, sent: int) -> int:
        return int(self.mod.finished(sent))

    def close(self) -> None:
        self.app.close()


class Procrastinate:
    name = "procrastinate"

    def __init__(self, db: Database) -> None:
        os.environ["BENCH_PROCRASTINATE_URL"] = db.url
        self.env = {**os.environ, "PYTHONPATH": str(HERE)}
        self.url = db.url
        import procrastinate_app

        self.mod = procrastinate_app
        self.mod.app.connector.conninfo = db.url  # type: ignore[attr-defined]
        self.opened = self.mod.app.open()
        self.mod.app.schema_manager.apply_schema()

    def send(self, n: int) -> None:
        for _ in range(n):
            self.mod.noop.defer()

    def send_batch(self, n: int) -> None:
        for start in range(0, n, 500):
            self.mod.noop.batch_defer(*([{}] * min(500, n - start)))

    def workers(self) -> list[list[str]]:
        return [
            [
                sys.executable,
                "-m",
                "procrastinate",
                "-a",
                "procrastinate_app.app",
                "worker",
                "--concurrency",
                "1",
            ]
            for _ in range(2)
        ]

    def finished(self, sent: int) -> int:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
            ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.mod.app.close()


def measure(
    kind: type[Conveyor] | type[Procrastinate], args: argparse.Namespace, log: Path
) -> dict[str, float]:
    out: dict[str, float] = {}
    for phase in ("single", "batch", "processing"):
        db = Database(f"conveyor_bench_{kind.name}")
        system = kind(db)
        try:
            if phase == "single":
                out["enqueue/s"] = rate(args.single, lambda s=system: s.send(args.single))
            elif phase == "batch":
                out["batch enqueue/s"] = rate(args.batch, lambda s=system: s.send_batch(args.batch))
            else:
                n = args.tasks
                system.send_batch(n)
                with workers(system, log) as pids:  # type: ignore[arg-type]
                    sampler = RssSampler(pids)
                    wait_for(lambda s=system, n=n: s.finished(n) >= 1, "the first task", poll=0.01)
                    begun = time.perf_counter()
                    wait_for(lambda s=system, n=n: s.finished(n) >= n, f"{n} tasks", poll=0.01)
                    out["processed/s"] = (n - 1) / (time.perf_counter() - begun)
                    out["peak RSS MiB"] = sampler.stop()
        finally:
            system.close()
            db.drop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--single", type=int, default=3_000)
    parser.add_argument("--batch", type=int, default=20_000)
    args = parser.parse_args()
    log = Path(tempfile.mkdtemp(prefix="conveyor-bench-")) / "workers.log"
    print(f"{os.cpu_count()} CPUs; {args.tasks} no-ops; {args.rounds} rounds; logs: {log}")
    kinds = [Conveyor, Procrastinate]
    runs: dict[str, list[dict[str, float]]] = {k.name: [] for k in kinds}
    for r in range(args.rounds):
        for kind in kinds[r % 2 :] + kinds[: r % 2]:
            got = measure(kind, args, log)
            runs[kind.name].append(got)
            print(
                f"round {r + 1} {kind.name}: " + ", ".join(f"{k} {v:,.1f}" for k, v in got.items()),
                flush=True,
            )
    print("\n| metric | conveyor | procrastinate | ratio |\n|---|---|---|---|")
    for metric in runs["conveyor"][0]:
        ours = statistics.median(x[metric] for x in runs["conveyor"])
        theirs = statistics.median(x[metric] for x in runs["procrastinate"])
        ratio = ours / theirs if metric.endswith("/s") else theirs / ours
        print(f"| {metric} | {ours:,.0f} | {theirs:,.0f} | {ratio:.2f}x |")
    print("ratio > 1: conveyor is better")


if __name__ == "__main__":
    main()
