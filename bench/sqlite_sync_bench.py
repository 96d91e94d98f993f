"""SQLite durability benchmark: what `synchronous=full` costs a producer beside `normal`.

    python bench/sqlite_sync_bench.py [--rounds 5] [--single 500] [--batches 20] [--batch-size 500]

Both modes run on the same disk in the same run, rounds interleaved (the order alternates from
round to round), each measurement in a fresh process on a fresh database file:
  * single — one process calling `noop.delay()` N times (one commit each);
  * batch  — `app.send_many(noop, …)` in chunks of `--batch-size` (one commit per chunk);
  * worker — the calls sent above run by an in-process solo worker fetching 100 at a time,
             its writer thread batching outcomes and acks as in `conveyor worker`
             (`run_until_idle`: the worker's own commits, without start-up).
For each: calls per second (wall clock) and the process's CPU time per call (user + system,
`time.process_time`), medians over the rounds.

Then, once per mode, the same sends run under `strace -f -e trace=fdatasync,fsync,…`: the child
stats a marker path (which does not exist) just before and after each phase, and the calls to
fdatasync/fsync between the markers are counted. The traced runs' rates are not reported
(tracing slows every system call); without strace on PATH the count is reported as missing.

The database files live under `--dir` (default: a temporary directory beside this file), which
must be on a real disk: on tmpfs fsync does nothing and both modes measure the same.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = ("normal", "full")
MARK = "/conveyor-bench-mark"
PHASES = ("single", "batch", "worker")


# -- the child: one producer process --------------------------------------------------------
def child(mode: str, db: Path, single: int, batches: int, batch_size: int) -> None:
    """Send and print one JSON line: {phase: [calls/s, cpu µs per call]}."""
    from conveyor import Conveyor
    from conveyor.worker.worker import Worker, default_options

    app = Conveyor("bench", broker=f"sqlite:///{db}?synchronous={mode}", set_as_current=False)

    @app.task(name="bench.noop")
    def noop() -> int:
        return 1

    noop.delay()  # open the file and create the tables outside the measurement
    out: dict[str, list[float]] = {}
    sent = single + batches * batch_size + 1  # and the warm-up call
    for phase, count in (("single", single), ("batch", batches * batch_size), ("worker", sent)):
        os.path.exists(f"{MARK}/{phase}-begin")  # a marker the traced run counts between
        wall, cpu = time.perf_counter(), time.process_time()
        if phase == "single":
            for _ in range(count):
                noop.delay()
        elif phase == "batch":
            app.send_many(noop, [()] * count, chunk_size=batch_size)
        else:
            options = default_options(app, name="bench@local", prefetch_multiplier=100)
            worker = Worker(app, options)
            worker.settler.writer.start()  # batched writes on their own thread, as in production
            ran = worker.run_until_idle()
            worker.settler.writer.stop()
            assert ran == count, f"the worker ran {ran} of {count} calls"
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        os.path.exists(f"{MARK}/{phase}-end")
        out[phase] = [count / wall, cpu / count * 1e6]
    app.close()
    print(json.dumps(out))


# -- the parent: rounds, medians, sync counts -----------------------------------------------
def run_child(
    mode: str, workdir: Path, args: argparse.Namespace, trace: Path | None = None
) -> dict[str, list[float]]:
    db = workdir / f"{mode}-{time.monotonic_ns()}.db"
    cmd = [sys.executable, __file__, "--child", mode, str(db)]
    cmd += [str(args.single), str(args.batches), str(args.batch_size)]
    if trace is not None:
        syscalls = "fdatasync,fsync,stat,newfstatat,access,faccessat,faccessat2,statx"
        cmd = ["strace", "-f", "-qq", "-e", f"trace={syscalls}", "-o", str(trace), *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    result: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def count_syncs(trace: Path) -> dict[str, int]:
    """fdatasync/fsync calls between each phase's begin and end markers."""
    counts = dict.fromkeys(PHASES, 0)
    phase: str | None = None
    for line in trace.read_text().splitlines():
        if MARK in line:
            tag = line.split(MARK + "/", 1)[1].split('"', 1)[0]
            name, _, edge = tag.rpartition("-")
            phase = name if edge == "begin" else None
        elif phase is not None and ("fdatasync(" in line or "fsync(" in line):
            counts[phase] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--single", type=int, default=500, help="single .delay() calls")
    parser.add_argument("--batches", type=int, default=20, help="send_many chunks")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (a disk)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, db, single, batches, size = args.child
        child(mode, Path(db), int(single), int(batches), int(size))
        return
    workdir = Path(tempfile.mkdtemp(prefix="sync-bench-", dir=args.dir or HERE))
    print(
        f"{os.cpu_count()} CPUs; {args.single} single sends, {args.batches} batches of "
        f"{args.batch_size}; {args.rounds} rounds; files in {workdir}",
        flush=True,
    )
    runs: dict[str, list[dict[str, list[float]]]] = {m: [] for m in MODES}
    try:
        for r in range(args.rounds):
            for mode in MODES if r % 2 == 0 else MODES[::-1]:
                got = run_child(mode, workdir, args)
                runs[mode].append(got)
                shown = ", ".join(f"{p} {v[0]:,.0f}/s {v[1]:,.0f} µs CPU" for p, v in got.items())
                print(f"round {r + 1} {mode}: {shown}", flush=True)
        syncs = {m: traced_syncs(m, workdir, args) for m in MODES}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(table(runs, syncs, args))


def traced_syncs(mode: str, workdir: Path, args: argparse.Namespace) -> dict[str, int] | None:
    if shutil.which("strace") is None:
        return None
    trace = workdir / f"{mode}.strace"
    run_child(mode, workdir, args, trace)
    return count_syncs(trace)


def table(
    runs: dict[str, list[dict[str, list[float]]]],
    syncs: dict[str, dict[str, int] | None],
    args: argparse.Namespace,
) -> str:
    batched = args.batches * args.batch_size
    sizes = {"single": args.single, "batch": batched, "worker": args.single + batched + 1}
    lines = [
        "| phase | synchronous | calls/s | CPU µs per call | fdatasync+fsync calls |",
        "|---|---|---|---|---|",
    ]
    for phase in PHASES:
        for mode in MODES:
            rate = statistics.median(r[phase][0] for r in runs[mode])
            cpu = statistics.median(r[phase][1] for r in runs[mode])
            counted = syncs[mode]
            shown = "no strace" if counted is None else f"{counted[phase]:,}"
            lines.append(
                f"| {phase} ({sizes[phase]:,} calls) | {mode} | {rate:,.0f} | {cpu:,.0f} | "
                f"{shown} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
