"""SQLite backend benchmark: conveyor beside Huey (SqliteHuey), measured in the same run.

    python bench/sqlite_bench.py [--tasks 10000] [--latency-tasks 500]

For each queue, on a fresh database file:
  * enqueue rate   — one process calling `.delay()` / `task()` N times (one commit each);
  * processing rate — N no-op tasks already queued, then 2 worker processes started; wall time
    from starting them until every result is readable (start-up included for both);
  * latency        — workers idle and running; tasks sent one at a time at ~100/s; each task
    returns the time it started; p50/p99 of (start - send).
Conveyor's workers: two `conveyor worker -P solo` processes. Huey's: `huey_consumer -w 2 -k
process` with its idle polling tightened to 1–10 ms (`-d 0.001 -m 0.01`; its defaults back
off to 10 s, which would make its latency meaningless). Ratios are conveyor ÷ huey for rates
(higher is better) and huey ÷ conveyor for latencies (higher is better).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
LATENCY_RATE = 100.0  # sends per second in the latency run


def env_with(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


@contextmanager
def processes(cmds: list[list[str]], env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("w") as out:
        procs = [
            subprocess.Popen(c, cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT)
            for c in cmds
        ]
        try:
            yield
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()


def wait_for(done: Callable[[], bool], timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit("benchmark timed out")
        time.sleep(0.005)


def percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return qs[49], qs[98]


class ConveyorRun:
    name = "conveyor"

    def __init__(self, workdir: Path) -> None:
        self.db = workdir / "conveyor.db"
        os.environ["CONVEYOR_BROKER_URL"] = f"sqlite:///{self.db}"
        import conveyor_app

        self.mod = conveyor_app
        self.env = env_with(CONVEYOR_BROKER_URL=f"sqlite:///{self.db}")
        self.workers = conveyor_app.worker_commands()

    def enqueue(self, n: int) -> list[str]:
        return [self.mod.noop.delay().id for _ in range(n)]

    def all_done(self, ids: list[str]) -> Callable[[], bool]:
        store = self.mod.app.results
        return lambda: sum(o.state.ready for o in store.get_many(ids).values()) == len(ids)

    def send_stamp(self) -> object:
        return self.mod.stamp.delay()

    def started_at(self, handle: object) -> float:
        return float(handle.get(timeout=60))  # type: ignore[attr-defined]

    def ready(self) -> bool:
        return sum(w.stopped_at is None for w in self.mod.app.broker.workers()) >= 2


class HueyRun:
    name = "huey"

    def __init__(self, workdir: Path) -> None:
        self.db = workdir / "huey.db"
        os.environ["BENCH_HUEY_DB"] = str(self.db)
        import huey_app

        self.mod = huey_app
        self.env = env_with(BENCH_HUEY_DB=str(self.db))
        # Beside this interpreter first: the venv's bin/ need not be on PATH.
        consumer = shutil.which("huey_consumer", path=str(Path(sys.executable).parent))
        consumer = consumer or shutil.which("huey_consumer")
        if consumer is None:
            raise SystemExit('huey_consumer not found: pip install -e ".[bench]"')
        self.workers = [
            [
                sys.executable,
                consumer,
                "huey_app.huey",
                "-w",
                "2",
                "-k",
                "process",
                "-d",
                "0.001",
                "-m",
                "0.01",
                "-q",
            ]
        ]

    def enqueue(self, n: int) -> list[object]:
        return [self.mod.noop() for _ in range(n)]

    def all_done(self, ids: list[object]) -> Callable[[], bool]:
        return lambda: self.mod.huey.result_count() >= len(ids)

    def send_stamp(self) -> object:
        return self.mod.stamp()

    def started_at(self, handle: object) -> float:
        return float(handle.get(blocking=True, timeout=60))  # type: ignore[attr-defined]

    def ready(self) -> bool:
        return True


def measure(run: ConveyorRun | HueyRun, n: int, latency_n: int, workdir: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    begun = time.perf_counter()
    ids = run.enqueue(n)
    out["enqueue/s"] = n / (time.perf_counter() - begun)
    begun = time.perf_counter()
    with processes(run.workers, run.env, workdir / f"{run.name}-workers.log"):
        wait_for(run.all_done(ids))
        out["processed/s"] = n / (time.perf_counter() - begun)
        wait_for(run.ready, 60)
        lags = []
        for _ in range(latency_n):
            sent = time.time()
            handle = run.send_stamp()
            lags.append((handle, sent))
            time.sleep(1.0 / LATENCY_RATE)  # pacing the producer, not synchronisation
        samples = [(run.started_at(h) - sent) * 1000 for h, sent in lags]
    out["latency p50 ms"], out["latency p99 ms"] = percentiles(samples)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--latency-tasks", type=int, default=500)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    print(
        f"{args.tasks} no-op tasks, 2 worker processes, {os.cpu_count()} CPUs, files in {workdir}"
    )
    ours = measure(ConveyorRun(workdir), args.tasks, args.latency_tasks, workdir)
    theirs = measure(HueyRun(workdir), args.tasks, args.latency_tasks, workdir)
    print(f"{'metric':<16}{'conveyor':>12}{'huey':>12}{'ratio':>10}")
    for key in ours:
        better_high = key.endswith("/s")
        ratio = ours[key] / theirs[key] if better_high else theirs[key] / ours[key]
        print(f"{key:<16}{ours[key]:>12.1f}{theirs[key]:>12.1f}{ratio:>9.2f}x")
    print("ratio > 1 means conveyor is better (faster rate or lower latency)")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
