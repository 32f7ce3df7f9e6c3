"""The script calls: one limiter's conversation with Redis, and what the last answer said.

:class:`Link` builds the scripts' arguments (``_lua.py``) from the process's settings and its
view of the shared state, runs a script with a time limit, and keeps what the answer said: the
limits in force, the levels, the shared pause, and the shared limits to seed the key with should
it be lost. A key is taken for lost, not fresh, when this process talked to it within its time
to live or kept sending while Redis was away. While the process has configured limits, the link
refreshes its ceiling in Redis when nothing else did for a third of ``ceiling_ttl``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._lua import ACQUIRE, UPDATE
from ._messages import Reply, Report

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["Link", "Settings", "loop_time", "lowest", "rate"]

# LocalLimiter's headroom (see _limits/_local.py), so both limiters hold the same bursts.
_REQUEST_HEADROOM_SECONDS = 0.1
_TOKEN_HEADROOM_SECONDS = 0.25
_URGENT_PRIORITY = 1  # Priority.HIGH: this and more urgent keep credit from less urgent work.


def positive(name: str, value: float) -> float:
    """``value`` as a float, or ValueError unless it is positive and finite."""
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def rate(value: float | None) -> float | None:
    """A limit: None (unlimited) or positive and finite."""
    return None if value is None else positive("a limit", value)


def lowest(value: float | None, ceiling: float | None) -> float | None:
    """The lower of two limits (None: unlimited)."""
    if value is None or ceiling is None:
        return ceiling if value is None else value
    return min(value, ceiling)


def loop_time() -> float:
    """The event loop's clock (time.monotonic() on every standard loop), also outside the loop."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


def _arg(value: float | None) -> str:
    return "" if value is None else repr(float(value))


@dataclass(frozen=True, slots=True)
class Settings:
    """What a limiter tells the scripts about itself (its constructor's arguments, checked)."""

    key: str
    own: tuple[float | None, float | None]  # this process's configured limits (its ceiling)
    burst_seconds: float
    ttl: float
    ceiling_ttl: float
    timeout: float
    reserve_share: float
    max_booking: float
    urgent_hold: float
    probe_lease: float = 5.0  # seconds a process leads the probing after its last change

    def __post_init__(self) -> None:
        for name in ("burst_seconds", "ttl", "ceiling_ttl", "timeout", "probe_lease"):
            positive(name, getattr(self, name))
        for limit in self.own:
            rate(limit)
        if not 0 <= self.reserve_share < 1:
            raise ValueError("reserve_share must be in [0, 1)")
        if not (self.max_booking >= 0 and self.urgent_hold >= 0):
            raise ValueError("max_booking and urgent_hold must be >= 0")


class Link:
    """Runs the scripts for one limiter and remembers the last answer."""

    __slots__ = (
        "_acquire",
        "_client",
        "_keepalive",
        "_on_trouble",
        "_process_id",
        "_update",
        "errors",
        "last",
        "last_reply_at",
        "led_elsewhere_until",
        "pause_at",
        "round_trips",
        "seed_empty",
        "settings",
        "shared",
        "shared_pause_at",
    )

    def __init__(
        self,
        settings: Settings,
        client: Redis,
        errors: tuple[type[BaseException], ...],
        on_trouble: Callable[[BaseException, Report], None],
        process_id: str,
    ) -> None:
        self.settings = settings
        self._client = client
        self.errors = errors
        self._on_trouble = on_trouble
        self._process_id = process_id
        self._acquire: AsyncScript = client.register_script(ACQUIRE)
        self._update: AsyncScript = client.register_script(UPDATE)
        self._keepalive: asyncio.Task[None] | None = None
        self.last: Reply | None = None
        self.last_reply_at: float | None = None  # loop time
        self.shared: tuple[float, float, str] = (0.0, 0.0, "configured")
        self.shared_pause_at = -math.inf  # loop time
        self.led_elsewhere_until = -math.inf  # loop time: another process leads the probing
        self.pause_at = -math.inf  # this process's own latest pause, loop time
        self.seed_empty = False  # it kept sending while Redis was away
        self.round_trips = 0

    def register_script(self, source: str) -> AsyncScript:
        """Another script on the same connection (the acceptance log's)."""
        return self._client.register_script(source)

    @property
    def process_id(self) -> str:
        """This limiter's name in Redis (its ceiling, its watermark, its probing lease)."""
        return self._process_id

    async def run(self, script: AsyncScript, keys: list[str], args: list[str]) -> Any:
        """Run a script within the time limit; Redis errors propagate."""
        self.round_trips += 1
        async with asyncio.timeout(self.settings.timeout * 4):
            return await script(keys=keys, args=args)

    async def ping(self) -> object:
        return await self._client.ping()

    # -- the two scripts --------------------------------------------------------------------
    async def acquire(self, report: Report, tokens: int, priority: int) -> Reply | None:
        """ACQUIRE with ``report``; None on Redis trouble (``on_trouble`` was told)."""
        s = self.settings
        args = [
            *self._common_args(report, leaving=False),
            str(int(tokens)),
            str(int(priority)),
            str(_URGENT_PRIORITY),
            repr(s.reserve_share),
            repr(s.max_booking),
            repr(s.urgent_hold),
        ]
        return await self._call(self._acquire, args, report)

    async def update(self, report: Report, *, leaving: bool = False) -> Reply | None:
        """UPDATE with ``report`` (``leaving`` withdraws this process's ceiling)."""
        return await self._call(self._update, self._common_args(report, leaving=leaving), report)

    def _common_args(self, report: Report, *, leaving: bool) -> list[str]:
        s = self.settings
        now = loop_time()
        known_pause = max(self.pause_at, self.shared_pause_at) - now
        shared_rps, shared_tpm, src = self.shared
        recent = self.last_reply_at is not None and now - self.last_reply_at < s.ttl
        return [
            repr(s.burst_seconds),
            repr(_REQUEST_HEADROOM_SECONDS),
            repr(_TOKEN_HEADROOM_SECONDS),
            str(int(s.ttl * 1000)),
            repr(shared_rps),
            repr(shared_tpm),
            src,
            "1" if self.seed_empty or recent else "0",
            _arg(known_pause) if known_pause > 0 else "",
            self._process_id,
            _arg(s.own[0]),
            _arg(s.own[1]),
            str(int(s.ceiling_ttl * 1000)),
            "1" if leaving else "0",
            *report.args(now),
            repr(s.probe_lease),
        ]

    async def _call(self, script: AsyncScript, args: list[str], report: Report) -> Reply | None:
        try:
            reply = Reply.parse(await self.run(script, [self.settings.key], args))
        except self.errors as exc:
            self._on_trouble(exc, report)
            return None
        self.last = reply
        self.last_reply_at = loop_time()
        self.seed_empty = False
        self.shared = reply.shared
        self.shared_pause_at = self.last_reply_at + reply.paused_for
        self.led_elsewhere_until = self.last_reply_at + reply.led_elsewhere
        self._keep_alive()
        return reply

    # -- the ceiling kept alive -------------------------------------------------------------
    def _keep_alive(self) -> None:
        if self._keepalive is None and self.settings.own != (None, None):
            self._keepalive = asyncio.get_running_loop().create_task(
                self._refresh(), name="grok-scheduler-redis-ceiling"
            )

    async def _refresh(self) -> None:
        period = self.settings.ceiling_ttl / 3
        while True:
            await asyncio.sleep(period)
            since = loop_time() - (self.last_reply_at or -math.inf)
            if since >= period * 0.9 and not self.seed_empty:  # not while Redis is away
                # Errors are handled in _call (the fallback takes over and probes).
                await self.update(Report())

    async def aclose(self) -> None:
        """Stop refreshing the ceiling and disconnect."""
        task, self._keepalive = self._keepalive, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])  # wait() keeps our own cancellation intact
        await self._client.aclose()
