"""One adapter per task queue measured by bench/redis_bench.py: how to send, how to start its
workers (2 processes each), how many no-ops it has finished, and how to read a start stamp.
Each system works in a Redis database index of its own, which must be empty when it starts."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent


def _bin(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise SystemExit(f'{name} not found: pip install -e ".[bench]"')
    return found


def count_keys(client: redis.Redis, pattern: str) -> int:
    return sum(1 for _ in client.scan_iter(match=pattern, count=10_000))


class System:
    name = ""
    env_var = ""
    batch_api = "-"

    def __init__(self, server: str, db: int) -> None:
        self.url = f"{server}/{db}"
        self.client = redis.Redis.from_url(self.url)
        if self.client.dbsize():
            raise SystemExit(f"Redis database {self.url} is not empty; pick free --first-db")
        os.environ[self.env_var] = self.url
        self.env = {**os.environ, "PYTHONPATH": str(HERE), self.env_var: self.url}

    def send(self, n: int) -> None:
        raise NotImplementedError

    def send_batch(self, n: int) -> bool:
        return False

    def workers(self) -> list[list[str]]:
        raise NotImplementedError

    def finished(self, sent: int) -> int:
        """How many of the `sent` no-ops have finished."""
        raise NotImplementedError

    def stamp(self) -> float:
        """Send one `stamp` call and return the time it started (its result)."""
        raise NotImplementedError

    def clean(self) -> None:
        self.client.flushdb()  # only ever a database that was empty when we began


class Conveyor(System):
    name, env_var, batch_api = "conveyor", "CONVEYOR_BROKER_URL", "app.send_many"

    def __init__(self, server: str, db: int) -> None:
        super().__init__(server, db)
        import conveyor_app

        self.mod = conveyor_app
        self.mod.app.broker  # noqa: B018 - connect before timing

    def send(self, n: int) -> None:
        delay = self.mod.noop.delay
        for _ in range(n):
            delay()

    def send_batch(self, n: int) -> bool:
        self.mod.app.send_many(self.mod.noop, [()] * n)
        return True

    def workers(self) -> list[list[str]]:
        return self.mod.worker_commands()

    def finished(self, sent: int) -> int:
        return int(self.mod.finished(sent))

    def stamp(self) -> float:
        return float(self.mod.stamp.delay().get(timeout=30))


class Celery(System):
    name, env_var, batch_api = "celery", "BENCH_CELERY_URL", "group().apply_async()"

    def __init__(self, server: str, db: int) -> None:
        super().__init__(server, db)
        import celery_app

        self.mod = celery_app

    def send(self, n: int) -> None:
        delay = self.mod.noop.delay
        for _ in range(n):
            delay()

    def send_batch(self, n: int) -> bool:
        from celery import group

        group(self.mod.noop.s() for _ in range(n)).apply_async()
        return True

    def workers(self) -> list[list[str]]:
        return [
            [
                _bin("celery"),
                "-A",
                "celery_app",
                "worker",
                "-P",
                "prefork",
                "-c",
                "2",
                "-l",
                "error",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        ]

    def finished(self, sent: int) -> int:
        return count_keys(self.client, "celery-task-meta-*")

    def stamp(self) -> float:
        return float(self.mod.stamp.delay().get(timeout=30))


class Dramatiq(System):
    name, env_var, batch_api = "dramatiq", "BENCH_DRAMATIQ_URL", "group().run()"

    def __init__(self, server: str, db: int) -> None:
        super().__init__(server, db)
        import dramatiq_app

        self.mod = dramatiq_app

    def send(self, n: int) -> None:
        send = self.mod.noop.send
        for _ in range(n):
            send()

    def send_batch(self, n: int) -> bool:
        from dramatiq import group

        group(self.mod.noop.message() for _ in range(n)).run()
        return True

    def workers(self) -> list[list[str]]:
        return [[_bin("dramatiq"), "dramatiq_app", "-p", "2"]]  # its default 8 threads each

    def finished(self, sent: int) -> int:
        # no results for no-ops (Dramatiq's default): a message leaves `.msgs` when acked
        return sent - int(self.client.hlen("dramatiq:default.msgs"))

    def stamp(self) -> float:
        message = self.mod.stamp.send()
        return float(message.get_result(block=True, timeout=30_000))


class Huey(System):
    name, env_var = "huey", "BENCH_HUEY_URL"

    def __init__(self, server: str, db: int) -> None:
        super().__init__(server, db)
        import huey_redis_app

        self.mod = huey_redis_app

    def send(self, n: int) -> None:
        noop = self.mod.noop
        for _ in range(n):
            noop()

    def workers(self) -> list[list[str]]:
        # idle polling tightened to 1–10 ms (its defaults back off to 10 s)
        return [
            [
                sys.executable,
                _bin("huey_consumer"),
                "huey_redis_app.huey",
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

    def finished(self, sent: int) -> int:
        return int(self.mod.huey.result_count())

    def stamp(self) -> float:
        return float(self.mod.stamp().get(blocking=True, timeout=30))


class Taskiq(System):
    name, env_var = "taskiq", "BENCH_TASKIQ_URL"

    def __init__(self, server: str, db: int) -> None:
        super().__init__(server, db)
        import taskiq_app

        self.mod = taskiq_app
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.mod.broker.startup())

    def send(self, n: int) -> None:
        async def go() -> None:
            kiq = self.mod.noop.kiq
            for _ in range(n):
                await kiq()

        self.loop.run_until_complete(go())

    def workers(self) -> list[list[str]]:
        return [
            [
                _bin("taskiq"),
                "worker",
                "taskiq_app:broker",
                "--workers",
                "2",
                "--log-level",
                "ERROR",
            ]
        ]

    def finished(self, sent: int) -> int:
        return count_keys(self.client, "res:*")

    def stamp(self) -> float:
        async def go() -> Any:
            task = await self.mod.stamp.kiq()
            return (await task.wait_result(timeout=30, check_interval=0.0005)).return_value

        return float(self.loop.run_until_complete(go()))


SYSTEMS: dict[str, type[System]] = {s.name: s for s in (Conveyor, Celery, Dramatiq, Huey, Taskiq)}
