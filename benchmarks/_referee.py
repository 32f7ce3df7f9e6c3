"""A referee: the simulator in a child process, its counters read over a pipe.

The server runs in its own process so that its CPU is never charged to the client under test,
and so that a client which hogs its event loop cannot slow the referee's clock. Unlike
``_common.SimulatorProcess`` (the CLI, no way to read its counters), this one answers "stats"
and can halve its request limit once a given number of requests was accepted: a count-based
trigger lands "a third of the way in" whatever the client's start-up time.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["RefereeProcess"]


class RefereeProcess:
    """``Simulator(SimulatorConfig(**config))`` in a spawned process; ``stats()`` and ``stop()``.

    ``config["model_limits"]`` may map a model to ``(rps, tpm)`` or ``(rps, tpm, rpm)`` tuples
    (plain values cross the pipe); ``halve_after`` halves the default request limit once that
    many requests were accepted.
    """

    def __init__(self, config: dict[str, Any], *, halve_after: int | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, config, halve_after), daemon=True
        )
        self._process.start()
        self.base_url: str = self._conn.recv()

    def stats(self) -> dict[str, Any]:
        """The simulator's counters now."""
        self._conn.send("stats")
        result: dict[str, Any] = self._conn.recv()
        return result

    def stop(self) -> None:
        """Stop the server and its process."""
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def __enter__(self) -> RefereeProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _serve(conn: Connection, config: dict[str, Any], halve_after: int | None) -> None:
    """Child process: serve until told to stop."""
    asyncio.run(_simulate(conn, config, halve_after))


async def _simulate(conn: Connection, config: dict[str, Any], halve_after: int | None) -> None:
    import logging

    import structlog

    from grok_scheduler.simulator import ModelLimits, Simulator, SimulatorConfig

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    options = dict(config)
    options["model_limits"] = {
        model: ModelLimits(*limits) for model, limits in config.get("model_limits", {}).items()
    }
    async with Simulator(SimulatorConfig(**options)) as sim:
        conn.send(sim.base_url)
        watcher = None
        if halve_after is not None:
            watcher = asyncio.create_task(_halve_when(sim, halve_after))
        while True:
            command = await asyncio.to_thread(conn.recv)
            if command == "stats":
                stats = sim.stats
                conn.send(
                    {
                        "requests": stats.requests,
                        "accepted": stats.accepted,
                        "rate_limited": stats.rate_limited,
                        "tokens": stats.tokens,
                        "max_in_flight": stats.max_in_flight,
                        "accepted_by_model": dict(stats.accepted_by_model),
                    }
                )
            elif command == "stop":
                break
        if watcher is not None:
            watcher.cancel()


async def _halve_when(sim: Any, accepted: int) -> None:
    # The simulator offers no event for "n accepted", so the referee looks every 5 ms; it runs
    # in the server's own process, so no cross-process delay skews the moment.
    while sim.stats.accepted < accepted:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    sim.set_limits(requests_per_second=sim.config.requests_per_second / 2.0)
