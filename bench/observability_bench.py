"""What watching a worker costs: processing with Prometheus metrics and JSON log lines on, beside
the same workers with both off, against the same server, interleaved round by round.

    python bench/observability_bench.py [--backend redis|postgres|sqlite] [--rounds 5]
                                        [--tasks 20000]

Every configuration runs the same 2 workers (`conveyor worker -P solo --prefetch-multiplier 100
-l info -f FILE`, the benchmark set-up of bench/README.md), so every configuration writes one
log line per task to a file; they differ only in what the issue asks to price:

  * off      — text log lines, no metrics endpoint (the default);
  * json     — `--log-format json`;
  * metrics  — `--metrics-port`, scraped every `--scrape` seconds (Prometheus's usual 15 s is
               gentler) by a thread of this script, like a Prometheus server would;
  * both     — JSON log lines and metrics.

Per round and configuration: N no-ops queued with `send_many`, the workers started, the rate
taken from the first finished task to the last (start-up excluded), and the CPU the worker
processes spent over that same span (user + system, from /proc through psutil) divided by the
tasks it covered. Progress is read the same way for every configuration (`queue_stats`, every
10 ms). After each `metrics`/`both` run, one last scrape must count every task as succeeded,
summed over both workers, or the benchmark stops: a figure is only printed for a run whose
metrics were right.

Medians over the rounds, configurations rotated each round; the ratio column is the
configuration's rate ÷ `off`'s rate (1.00 = free; 0.95 = 5 % slower).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import psutil  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from conveyor import Conveyor  # noqa: E402

CONFIGS: dict[str, tuple[bool, bool]] = {  # name: (json logs, metrics)
    "off": (False, False),
    "json": (True, False),
    "metrics": (False, True),
    "both": (True, True),
}
WORKERS = 2


@dataclass(frozen=True)
class Backend:
    """Where one run's messages and results live (`url(run)`), and how to remove them."""

    url: Callable[[int], str]
    clean: Callable[[str], None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_backend(server: str, db: int) -> Backend:
    import redis

    url = f"{server}/{db}"
    client = redis.Redis.from_url(url)
    if client.dbsize():
        raise SystemExit(f"Redis database {url} is not empty; pick a free one with --db")
    # Only ever a database this run found empty is flushed.
    return Backend(lambda run: url, lambda _: client.flushdb())


def sqlite_backend(folder: Path) -> Backend:
    def clean(url: str) -> None:
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    return Backend(lambda run: f"sqlite:///{folder}/run{run}.db", clean)


def bench_app(url: str) -> Conveyor:
    """The workers' app (bench/conveyor_app.py) as seen from this process, on `url`."""
    app = Conveyor("bench")
    app.conf.update(broker_url=url)
    app.task(name="bench.noop")(lambda: 1)
    return app


def finished(app: Conveyor, sent: int) -> int:
    """Settled calls: a message leaves the broker once its outcome is stored."""
    return sent - sum(s.ready + s.scheduled + s.leased for s in app.broker.queue_stats())


def worker_commands(json_logs: bool, ports: list[int | None], logs: Path) -> list[list[str]]:
    commands = []
    for i, port in enumerate(ports):
        cmd = [sys.executable, "-m", "conveyor", "-A", "conveyor_app", "worker", "-P", "solo",
               "--prefetch-multiplier", "100", "-n", f"obs{i}@%h", "-l", "info",
               "-f", str(logs / f"worker{i}.log")]  # fmt: skip
        if json_logs:
            cmd += ["--log-format", "json"]
        if port is not None:
            cmd += ["--metrics-port", str(port)]
        commands.append(cmd)
    return commands


@contextmanager
def running(commands: list[list[str]], env: dict[str, str], out: Path) -> Iterator[list[int]]:
    with out.open("a") as sink:
        procs = [
            subprocess.Popen(cmd, cwd=HERE, env=env, stdout=sink, stderr=subprocess.STDOUT)
            for cmd in commands
        ]
        try:
            yield [p.pid for p in procs]
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes and their descendants so far."""
    total = 0.0
    for pid in pids:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


def succeeded(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "conveyor_tasks_succeeded"
        for sample in family.samples
        if sample.name == "conveyor_tasks_succeeded_total"
    )


class Scraper:
    """A Prometheus stand-in: GET /metrics on every port every `every` seconds."""

    def __init__(self, ports: list[int], every: float) -> None:
        self.ports, self.every = ports, every
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for port in self.ports:
                try:
                    scrape(port)
                    self.scrapes += 1
                except OSError:
                    continue  # not listening yet: the next round tries again

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.scrapes


def wait_for(done: Callable[[], bool], what: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"benchmark timed out waiting for {what}")
        time.sleep(0.01)  # reading progress, the same way for every configuration


def measure(config: str, args: argparse.Namespace, url: str, logs: Path) -> dict[str, float]:
    json_logs, metrics = CONFIGS[config]
    ports: list[int | None] = [free_port() if metrics else None for _ in range(WORKERS)]
    n = args.tasks
    app = bench_app(url)
    app.send_many("bench.noop", [() for _ in range(n)])
    env = {**os.environ, "PYTHONPATH": str(HERE), "CONVEYOR_BROKER_URL": url}
    folder = Path(tempfile.mkdtemp(dir=logs, prefix=f"{config}-"))
    with running(worker_commands(json_logs, ports, folder), env, logs / "stdout.log") as pids:
        live = [p for p in ports if p is not None]
        scraper = Scraper(live, args.scrape) if live else None
        wait_for(lambda: finished(app, n) >= 1, "the first task")
        began, cpu0 = time.perf_counter(), cpu_seconds(pids)
        wait_for(lambda: finished(app, n) >= n, f"{n} tasks")
        span, cpu = time.perf_counter() - began, cpu_seconds(pids) - cpu0
        out = {"processed/s": (n - 1) / span, "CPU µs/task": cpu / (n - 1) * 1e6}
        if scraper is not None:
            out["scrapes"] = scraper.stop()
            counted = sum(succeeded(scrape(p)) for p in live)
            if counted != n:
                raise SystemExit(f"{config}: the workers' metrics counted {counted} of {n}")
    app.broker.close()
    lines = sum(1 for f in folder.glob("*.log") for _ in f.open())
    if lines < n:
        raise SystemExit(f"{config}: {lines} log lines for {n} tasks")
    shutil.rmtree(folder)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("redis", "sqlite"), default="redis")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--db", type=int, default=8, help="an empty Redis database index")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--scrape", type=float, default=1.0, help="seconds between scrapes")
    parser.add_argument("--only", default=",".join(CONFIGS))
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    if "off" not in names:
        raise SystemExit("--only must include off: every ratio is taken against it")
    logs = Path(tempfile.mkdtemp(prefix="conveyor-obs-bench-"))
    backend = (
        redis_backend(args.redis, args.db) if args.backend == "redis" else sqlite_backend(logs)
    )
    print(f"{os.cpu_count()} CPUs; {args.backend}; {args.tasks} no-ops; {args.rounds} rounds; "
          f"scrape every {args.scrape}s; logs under {logs}")  # fmt: skip
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    run = 0
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            run += 1
            url = backend.url(run)
            try:
                got = measure(name, args, url, logs)
            finally:
                backend.clean(url)
            runs[name].append(got)
            shown = ", ".join(f"{k} {v:,.1f}" for k, v in got.items())
            print(f"round {r + 1} {name}: {shown}", flush=True)
    print(f"\nmedians of {args.rounds} rounds ({args.backend}, {args.tasks} no-ops)\n")
    print("| configuration | processed/s | ÷ off | CPU µs/task | ÷ off |")
    print("|---|---|---|---|---|")
    base = {k: statistics.median(run[k] for run in runs["off"]) for k in runs["off"][0]}
    for name in names:
        rate = statistics.median(run["processed/s"] for run in runs[name])
        cpu = statistics.median(run["CPU µs/task"] for run in runs[name])
        print(
            f"| {name} | {rate:,.0f} | {rate / base['processed/s']:.2f} | {cpu:,.0f} | "
            f"{cpu / base['CPU µs/task']:.2f} |"
        )


if __name__ == "__main__":
    main()
