"""Redis trouble, survived and never raised: the fallback while Redis is away, and the way back.

With ``fallback="local"`` the process carries on with an in-process
:class:`~grok_scheduler.LocalLimiter` at ``share`` of the limits (other processes exist, so a
full share would overshoot), starting from its share of what Redis last said was left; with
``fallback="pause"`` it admits nothing. Either way one probe about every ``retry_interval``
(never a tight loop against a dead server) brings it back to Redis when Redis answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from .._limits._base import RateLimitHeaders
from .._limits._local import LocalLimiter
from .._observe._events import events as _log
from ._messages import Reply

if TYPE_CHECKING:
    from ._link import Link

__all__ = ["Fallback", "FallbackPolicy"]

FallbackPolicy = Literal["local", "pause"]
"""What to do while Redis is unreachable: a conservative local limiter, or admit nothing."""


class Fallback:
    """The state of one limiter's connection: up, or down with its fallback and its probe."""

    __slots__ = ("_down_since", "_key", "_local", "_policy", "_probe", "_retry_interval", "_share")

    def __init__(
        self, *, policy: FallbackPolicy, share: float, retry_interval: float, key: str
    ) -> None:
        self._policy: FallbackPolicy = policy
        self._share = share
        self._retry_interval = retry_interval
        self._key = key
        self._local: LocalLimiter | None = None
        self._down_since: float | None = None
        self._probe: asyncio.Task[None] | None = None

    @property
    def policy(self) -> FallbackPolicy:
        return self._policy

    @property
    def share(self) -> float:
        return self._share

    @property
    def down(self) -> bool:
        """True while Redis is unreachable and the fallback is in force."""
        return self._down_since is not None

    def scaled(self, rate: float | None) -> float | None:
        """This process's share of a fleet-wide limit."""
        return rate * self._share if rate else None

    def settle(self, reserved: int, used: int, now: float) -> bool:
        """Settle on the local limiter; False when there is none (Redis keeps the credit)."""
        if self._local is not None:
            self._local.settle(reserved, used, now)
        return self._local is not None

    def refund(self, reserved: int, now: float) -> bool:
        """Refund to the local limiter; False when there is none (Redis keeps the credit)."""
        if self._local is not None:
            self._local.refund(reserved, now)
        return self._local is not None

    def pause_until(self, deadline: float, now: float, reason: str) -> None:
        if self._local is not None:
            self._local.pause_until(deadline, now, reason)

    def set_limits(self, rps: float | None, tpm: float | None, now: float, reason: str) -> None:
        """New fleet-wide limits: the local limiter takes its share of them."""
        if self._local is not None:
            self._local.set_limits(
                requests_per_second=self.scaled(rps),
                tokens_per_minute=self.scaled(tpm),
                now=now,
                reason=reason,
            )

    def acquire(
        self,
        tokens: int,
        now: float,
        *,
        limits: tuple[float | None, float | None],
        burst_seconds: float,
        last: Reply | None,
        paused_until: float,
        listener: Callable[[], None] | None,
    ) -> float:
        """The fallback's answer to an acquisition while Redis is away."""
        if self._policy == "pause":
            return self._retry_interval
        if self._local is None:
            self._local = self._start_local(now, limits, burst_seconds, last, paused_until)
            if listener is not None:
                self._local.set_listener(listener)
        return self._local.try_acquire(tokens, now)

    def _start_local(
        self,
        now: float,
        limits: tuple[float | None, float | None],
        burst_seconds: float,
        last: Reply | None,
        paused_until: float,
    ) -> LocalLimiter:
        share = self._share
        local = LocalLimiter(
            requests_per_second=self.scaled(limits[0]),
            tokens_per_minute=self.scaled(limits[1]),
            burst_seconds=burst_seconds,
            now=now,
        )
        # Start from this process's share of what Redis last said was left (nothing, if it never
        # answered): a full local burst on top of a drained server bucket is a 429 storm, and
        # 429s make the whole pool back off for longer than any burst saves.
        local.observe_headers(
            RateLimitHeaders(
                requests_remaining=_share_of(last.requests_level if last else None, share),
                tokens_remaining=_share_of(last.tokens_level if last else None, share),
            ),
            now,
        )
        if paused_until > now:
            local.pause_until(paused_until, now, "429")
        return local

    def went_down(
        self, exc: BaseException, link: Link, on_restored: Callable[[], None], *, probe: bool
    ) -> bool:
        """Switch to the fallback (logged once); False when it already was in force."""
        if self._down_since is not None:
            return False
        loop = asyncio.get_running_loop()
        self._down_since = loop.time()
        _log.warning(
            "grok_scheduler.redis_unavailable",
            key=self._key,
            error_type=type(exc).__name__,
            fallback=self._policy,
            fallback_share=self._share if self._policy == "local" else None,
        )
        if probe:
            self._probe = loop.create_task(
                self._reconnect(link, on_restored),
                name="grok-scheduler-redis-probe",
            )
        return True

    async def _reconnect(self, link: Link, on_restored: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(self._retry_interval)
            try:
                async with asyncio.timeout(link.settings.timeout * 4):
                    await link.ping()
            except link.errors:
                continue
            break
        loop = asyncio.get_running_loop()
        down_since = self._down_since if self._down_since is not None else loop.time()
        self._down_since = None
        self._local = None
        self._probe = None
        _log.info(
            "grok_scheduler.redis_restored",
            key=self._key,
            down_seconds=round(loop.time() - down_since, 3),
        )
        on_restored()

    async def aclose(self) -> None:
        """Stop probing."""
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()
            await asyncio.wait([probe])


def _share_of(level: float | None, share: float) -> float:
    return max(0.0, level * share) if level is not None else 0.0
