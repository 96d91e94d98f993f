"""Redis benchmark: conveyor beside Celery (prefork), Dramatiq, Huey and Taskiq, against the same
Redis server in the same run, interleaved round by round, each with 2 worker processes.

    pip install -e ".[bench]"
    python bench/redis_bench.py [--rounds 3] [--tasks 20000] [--only conveyor,huey]

Per system and round, in a Redis database index of its own (it must be empty; it is flushed
after — only databases this run found empty are ever flushed):
  * enqueue (single) — one producer calling `.delay()` (or the peer's equivalent) N times;
  * enqueue (batch)  — the system's batch API (`app.send_many`, Celery/Dramatiq `group`);
  * processing       — N no-ops already queued, then the workers started; rate from the first
                       finished task to the last (worker start-up excluded for everyone);
  * latency          — workers idle; one `stamp` task at a time, each returning when it
                       started; p50/p99 of (start - send);
  * peak RSS         — the sum over every worker process (main and children), sampled every
                       100 ms while processing and during the latency run.
Medians over the rounds; ratios are conveyor ÷ peer for rates and peer ÷ conveyor for latency
and memory, so a ratio above 1 always means conveyor is better.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import psutil  # noqa: E402
from redis_systems import SYSTEMS, System  # noqa: E402

METRICS = (
    ("enqueue/s", True),
    ("batch enqueue/s", True),
    ("processed/s", True),
    ("latency p50 ms", False),
    ("latency p99 ms", False),
    ("peak RSS MiB", False),
)


class RssSampler:
    """Peak of the summed RSS of some processes and all their descendants."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            total = 0
            for pid in self.pids:
                try:
                    root = psutil.Process(pid)
                    for proc in [root, *root.children(recursive=True)]:
                        total += proc.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total / 2**20)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


@contextmanager
def workers(system: System, log: Path) -> Iterator[list[int]]:
    with log.open("a") as out:
        procs = [
            subprocess.Popen(cmd, cwd=HERE, env=system.env, stdout=out, stderr=subprocess.STDOUT)
            for cmd in system.workers()
        ]
        try:
            yield [p.pid for p in procs]
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:  # the measurement is over; do not wait on it
                    p.kill()
                    p.wait()


def wait_for(
    done: Callable[[], bool], what: str, timeout: float = 600.0, poll: float = 0.01
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"benchmark timed out waiting for {what}")
        time.sleep(poll)  # polling a benchmark's progress, not synchronising a test


def rate(n: int, action: Callable[[], object]) -> float:
    begun = time.perf_counter()
    action()
    return n / (time.perf_counter() - begun)


def measure(system: System, args: argparse.Namespace, log: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    out["enqueue/s"] = rate(args.single, lambda: system.send(args.single))
    system.clean()
    batch = rate(args.batch, lambda: system.send_batch(args.batch))
    if system.batch_api != "-":
        out["batch enqueue/s"] = batch
    system.clean()
    n = args.tasks
    if not system.send_batch(n):
        system.send(n)
    with workers(system, log) as pids:
        sampler = RssSampler(pids)
        poll = 0.002 if system.name in ("conveyor", "dramatiq", "huey") else 0.1
        wait_for(lambda: system.finished(n) >= 1, "the first task", poll=poll)
        begun = time.perf_counter()
        wait_for(lambda: system.finished(n) >= n, f"{n} tasks", poll=poll)
        out["processed/s"] = (n - 1) / (time.perf_counter() - begun)
        lags = []
        for _ in range(args.latency):
            sent = time.time()
            lags.append((system.stamp() - sent) * 1000)
            time.sleep(0.005)  # let the workers go idle again (pacing, not synchronisation)
        qs = statistics.quantiles(lags, n=100, method="inclusive")
        out["latency p50 ms"], out["latency p99 ms"] = qs[49], qs[98]
        out["peak RSS MiB"] = sampler.stop()
    system.clean()
    return out


def table(results: dict[str, dict[str, float]]) -> str:
    names = list(results)
    peers = [p for p in names if p != "conveyor"]
    head = f"| metric | {' | '.join(names)} |" + "".join(f" ÷ {p} |" for p in peers)
    rule = "|---" * (1 + len(names) + len(peers)) + "|"
    lines = [head, rule]
    for metric, higher_better in METRICS:
        row = [results[n].get(metric) for n in names]
        cells = ["-" if v is None else f"{v:,.1f}" if v < 100 else f"{v:,.0f}" for v in row]
        ratios = []
        ours = results.get("conveyor", {}).get(metric)
        for p in peers:
            theirs = results[p].get(metric)
            if ours is None or theirs is None:
                ratios.append("-")
            else:
                ratios.append(f"{(ours / theirs if higher_better else theirs / ours):.2f}x")
        lines.append(f"| {metric} | {' | '.join(cells)} |" + "".join(f" {r} |" for r in ratios))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--first-db", type=int, default=3, help="system k uses db first+k")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=20_000, help="no-ops processed")
    parser.add_argument("--single", type=int, default=5_000, help="single enqueues")
    parser.add_argument("--batch", type=int, default=50_000, help="batch enqueues")
    parser.add_argument("--latency", type=int, default=300, help="latency samples")
    parser.add_argument("--only", default=",".join(SYSTEMS), help="comma-separated systems")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    log = Path(tempfile.mkdtemp(prefix="conveyor-bench-")) / "workers.log"
    print(f"{os.cpu_count()} CPUs; {args.tasks} no-ops; {args.rounds} rounds; worker logs: {log}")
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    systems = {n: SYSTEMS[n](args.redis, args.first_db + i) for i, n in enumerate(names)}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]  # interleave the order
        for name in order:
            began = time.monotonic()
            got = measure(systems[name], args, log)
            got_in = time.monotonic() - began
            runs[name].append(got)
            print(
                f"round {r + 1} {name} ({got_in:.0f}s): "
                + ", ".join(f"{k} {v:,.1f}" for k, v in got.items()),
                flush=True,
            )
    medians = {
        n: {k: statistics.median(run[k] for run in runs[n]) for k in runs[n][0]} for n in names
    }
    print("\nmedians (ratio > 1: conveyor is better)\n")
    print(table(medians))


if __name__ == "__main__":
    main()
