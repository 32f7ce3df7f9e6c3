"""Helpers for the Redis tests: find (or require) a server, run a private one, run a worker.

The tests use the machine's ``redis-server`` on 127.0.0.1:6379 (database 9, a unique key per
test, deleted afterwards). Without one they skip, unless ``GROK_SCHEDULER_REQUIRE_REDIS=1``
(CI) makes them fail. Tests that stop Redis start their own server on a free port.

Run as a script, this module is one scheduler process of the multi-process tests::

    python tests/redis_support.py REDIS_URL KEY BASE_URL JOBS RPS PRIORITY
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from grok_scheduler.distributed import RedisLimiter

LimiterFactory = Callable[..., "RedisLimiter"]

REDIS_URL = os.environ.get("GROK_SCHEDULER_REDIS_URL", "redis://127.0.0.1:6379/9")
REQUIRED = os.environ.get("GROK_SCHEDULER_REQUIRE_REDIS") == "1"
WORKER = Path(__file__).resolve()
ROOT = WORKER.parent.parent


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when the environment requires Redis."""
    if REQUIRED:
        pytest.fail(f"GROK_SCHEDULER_REQUIRE_REDIS=1 but {reason}")
    pytest.skip(reason)


def require_redis(url: str = REDIS_URL) -> str:
    """``url`` if a Redis server answers there, else skip (or fail when required)."""
    try:
        import redis
    except ImportError:
        unavailable("the redis client is not installed (pip install grok-scheduler[redis])")
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"no Redis server at {url} ({type(exc).__name__})")
    finally:
        client.close()
    return url


def unique_key() -> str:
    """A limiter key no other test (or test run) uses."""
    return f"test-{uuid.uuid4().hex}"


def delete_keys(url: str, *keys: str) -> None:
    """Remove the tests' keys so nothing is left behind in the shared server."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@contextlib.asynccontextmanager
async def limiter_factory(url: str, **defaults: Any) -> AsyncIterator[LimiterFactory]:
    """``factory(**options)``: a ``RedisLimiter`` on one key of its own, ``defaults`` under
    ``options``; at the end every limiter made is closed and its keys deleted."""
    from grok_scheduler.distributed import RedisLimiter  # needs redis: only once it is there

    key = unique_key()
    made: list[RedisLimiter] = []

    def factory(**options: Any) -> RedisLimiter:
        limiter = RedisLimiter(**{"key": key, "url": url, **defaults, **options})
        made.append(limiter)
        return limiter

    try:
        yield factory
    finally:
        for limiter in made:
            await limiter.aclose()
        keys = {limiter.key for limiter in made}
        acceptance = {f"{key}:acceptance" for key in keys}
        delete_keys(url, *keys, *acceptance, *(f"{key}:marks" for key in acceptance))


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OwnRedis:
    """A private ``redis-server`` on a free port that a test may stop and start again."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
        assert binary is not None
        self._binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers (a couple of seconds at most)."""
        import redis

        self._process = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 5.0
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (its data is gone: it keeps nothing on disk)."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            process.wait(timeout=5)


@contextlib.contextmanager
def own_redis() -> Iterator[OwnRedis]:
    """A started private server, stopped at the end whatever happens."""
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def worker_command(
    redis_url: str, key: str, base_url: str, jobs: int, rps: float, priority: int
) -> list[str]:
    """The command line of one scheduler process (this module run as a script)."""
    return [
        sys.executable,
        str(WORKER),
        redis_url,
        key,
        base_url,
        str(jobs),
        str(rps),
        str(priority),
    ]


def worker_env() -> dict[str, str]:
    """The environment of a worker: the package importable from the source tree."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


async def _work(
    redis_url: str, key: str, base_url: str, jobs: int, rps: float, priority: int
) -> dict[str, object]:
    from grok_scheduler import RetryPolicy, Scheduler
    from grok_scheduler.distributed import RedisLimiter

    limiter = RedisLimiter(url=redis_url, key=key, requests_per_second=rps)
    retry = RetryPolicy(base_delay=0.05, max_delay=0.5, max_attempts=8)
    started = time.monotonic()
    async with Scheduler(
        api_key="xai-test", base_url=base_url, limiter=limiter, max_concurrency=16, retry=retry
    ) as scheduler:
        outcomes = await asyncio.gather(
            *(scheduler.submit(f"job {i}", priority=priority, max_tokens=16) for i in range(jobs)),
            return_exceptions=True,
        )
        round_trips = limiter.round_trips
    return {
        "ok": sum(1 for o in outcomes if not isinstance(o, BaseException)),
        "failed": sum(1 for o in outcomes if isinstance(o, BaseException)),
        "round_trips": round_trips,
        "seconds": time.monotonic() - started,
    }


def main(argv: list[str]) -> None:
    """Run one worker and print its summary as one JSON line."""
    redis_url, key, base_url, jobs, rps, priority = argv
    summary = asyncio.run(_work(redis_url, key, base_url, int(jobs), float(rps), int(priority)))
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
