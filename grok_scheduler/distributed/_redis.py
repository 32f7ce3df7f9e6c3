"""RedisLimiter: one key's limits shared by every process and host that uses the key.

Every rule runs inside Redis as one atomic Lua script per acquisition (see ``_lua.py``), so the
processes never read-modify-write, lock or poll. What a process learns (limits from headers or
the adaptive controller, a 429 pause, the server's remaining counts) and what it gives back
(settled or refunded credit) is collected in a small report that rides on its next acquisition,
or is sent on its own shortly after (at once for limits and pauses, which others must see).

Which source wins: the newest :meth:`RedisLimiter.set_limits` or header change, from any
process; a process's configured limits only seed a fresh key or replace other *configured*
limits (so a restart with a new configuration takes effect, but never undoes learned limits);
a pause is the later of the stored one and the new one.

Redis trouble is survived, never raised: with ``fallback="local"`` the process carries on with
an in-process :class:`~grok_scheduler.LocalLimiter` at ``fallback_share`` of the limits (other
processes exist, so a full share would overshoot), with ``fallback="pause"`` it admits nothing;
either way it probes Redis about once a second and returns to it when it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .._limits._base import (
    NONE_REMAIN_REASON,
    LimiterState,
    RateLimitHeaders,
    resync,
    stated_limits,
)
from .._limits._local import LocalLimiter
from .._observe._events import events as _log
from ._connection import connect, limiter_key, redact, redis_key
from ._lua import ACQUIRE, UPDATE
from ._messages import Reply, Report

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

__all__ = ["DEFAULT_REDIS_URL", "FallbackPolicy", "RedisLimiter"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
FallbackPolicy = Literal["local", "pause"]
"""What to do while Redis is unreachable: a conservative local limiter, or admit nothing."""

_URGENT_PRIORITY = 1  # Priority.HIGH: this and more urgent keep credit from less urgent work.
# The share of the server's burst kept in hand. For requests at burst_seconds=1 this equals
# LocalLimiter's headroom; for tokens LocalLimiter keeps only 0.25 s of a minute (99.6 %), so the
# two differ there (tests/limits/test_limiter_contract.py lists the known differences).
_HEADROOM = 0.9


def _positive(name: str, value: float) -> float:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _rate(value: float | None) -> float | None:
    return None if value is None else _positive("a limit", value)


@dataclass(slots=True)
class _Booking:
    """Credit the script set aside for this process, usable from ``at`` (caller's clock)."""

    at: float
    tokens: int
    expiry: asyncio.TimerHandle | None


class RedisLimiter:
    """A :class:`~grok_scheduler.Limiter` whose credit lives in Redis, shared by all processes.

    ``Scheduler(..., limiter=RedisLimiter(url=..., key="team-a:grok-4", requests_per_second=40))``
    in every process; or :meth:`from_url` to derive the key from the API key and model. Needs the
    ``redis`` extra (``pip install grok-scheduler[redis]``).
    """

    __slots__ = (
        "_acquire_script",
        "_booking",
        "_burst_seconds",
        "_client",
        "_closed",
        "_configured",
        "_down_since",
        "_errors",
        "_fallback",
        "_fallback_share",
        "_flush_delay",
        "_flush_now",
        "_flusher",
        "_key",
        "_last",
        "_listener",
        "_local",
        "_max_booking",
        "_paused_until",
        "_probe",
        "_report",
        "_reserve_share",
        "_retry_interval",
        "_round_trips",
        "_rps",
        "_seed_empty",
        "_seed_reason",
        "_shared_pause_at",
        "_timeout",
        "_tpm",
        "_ttl",
        "_update_script",
        "_urgent_hold",
        "_url",
        "_wake_flusher",
    )

    def __init__(
        self,
        *,
        url: str = DEFAULT_REDIS_URL,
        key: str,
        requests_per_second: float | None = None,
        tokens_per_minute: float | None = None,
        burst_seconds: float = 1.0,
        fallback: FallbackPolicy = "local",
        fallback_share: float = 0.25,
        reserve_share: float = 0.25,
        max_booking: float = 0.5,
        urgent_hold: float = 0.5,
        socket_timeout: float = 0.25,
        retry_interval: float = 1.0,
        ttl: float = 300.0,
        flush_delay: float = 0.05,
    ) -> None:
        if fallback not in ("local", "pause"):
            raise ValueError(f"fallback must be 'local' or 'pause', got {fallback!r}")
        if not 0 < fallback_share <= 1 or not 0 <= reserve_share < 1:
            raise ValueError("fallback_share must be in (0, 1] and reserve_share in [0, 1)")
        if not (max_booking >= 0 and urgent_hold >= 0 and flush_delay >= 0):
            raise ValueError("max_booking, urgent_hold and flush_delay must be >= 0")
        self._key = redis_key(key)
        self._url = url
        self._rps = _rate(requests_per_second)
        self._tpm = _rate(tokens_per_minute)
        self._burst_seconds = _positive("burst_seconds", burst_seconds)
        self._fallback: FallbackPolicy = fallback
        self._fallback_share = float(fallback_share)
        self._reserve_share = float(reserve_share)
        self._max_booking = float(max_booking)
        self._urgent_hold = float(urgent_hold)
        self._timeout = _positive("socket_timeout", socket_timeout)
        self._retry_interval = _positive("retry_interval", retry_interval)
        self._ttl = _positive("ttl", ttl)
        self._flush_delay = float(flush_delay)
        self._client, self._errors = connect(url, self._timeout)
        self._acquire_script: AsyncScript = self._client.register_script(ACQUIRE)
        self._update_script: AsyncScript = self._client.register_script(UPDATE)
        self._seed_reason = "configured"
        self._seed_empty = False
        self._configured = False
        self._report = Report()
        self._flush_now = False
        self._flusher: asyncio.Task[None] | None = None
        self._wake_flusher: asyncio.Event | None = None
        self._booking: _Booking | None = None
        self._paused_until = -math.inf
        self._listener: Callable[[], None] | None = None
        self._local: LocalLimiter | None = None
        self._down_since: float | None = None
        self._probe: asyncio.Task[None] | None = None
        self._last: Reply | None = None
        self._shared_pause_at = -math.inf
        self._round_trips = 0
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        api_key: str,
        model: str,
        requests_per_second: float | None = None,
        tokens_per_minute: float | None = None,
        **kwargs: Any,
    ) -> RedisLimiter:
        """A limiter keyed by :func:`limiter_key`: same URL, API key and model share limits."""
        return cls(
            url=url,
            key=limiter_key(api_key, model),
            requests_per_second=requests_per_second,
            tokens_per_minute=tokens_per_minute,
            **kwargs,
        )

    # -- introspection ----------------------------------------------------------------------
    @property
    def key(self) -> str:
        """The Redis key holding the shared state."""
        return self._key

    @property
    def requests_per_second(self) -> float | None:
        return self._rps

    @property
    def tokens_per_minute(self) -> float | None:
        return self._tpm

    @property
    def measures_acceptance(self) -> bool:
        """False: other processes spend the same credit (see :class:`~grok_scheduler.Limiter`)."""
        return False

    @property
    def round_trips(self) -> int:
        """Script calls sent to Redis so far (acquisitions and reports)."""
        return self._round_trips

    @property
    def using_redis(self) -> bool:
        """False while Redis is unreachable and the fallback policy is in force."""
        return self._down_since is None

    def state(self, now: float) -> LimiterState:
        last = self._last
        shared = self._shared_pause_at - _loop_time()
        paused = max(self._paused_until - now, shared)
        return LimiterState(
            requests_per_second=self._rps,
            tokens_per_minute=self._tpm,
            requests_available=last.requests_level if last else None,
            tokens_available=last.tokens_level if last else None,
            paused_for=max(0.0, paused),
            last_change_reason=last.reason if last else self._seed_reason,
        )

    def __repr__(self) -> str:
        return (
            f"RedisLimiter(url={redact(self._url)!r}, key={self._key!r}, "
            f"requests_per_second={self._rps}, tokens_per_minute={self._tpm}, "
            f"fallback={self._fallback!r}, using_redis={self.using_redis}, "
            f"round_trips={self._round_trips})"
        )

    # -- credit -----------------------------------------------------------------------------
    async def acquire(self, tokens: int, now: float, priority: int = 2) -> float:
        if now < self._paused_until:
            return self._paused_until - now
        booked = self._use_booking(tokens, now)
        if booked is not None:
            return booked
        if self._down_since is not None:
            return self._acquire_locally(tokens, now)
        report = self._take_report()
        args = [
            *self._common_args(report),
            str(int(tokens)),
            str(int(priority)),
            str(_URGENT_PRIORITY),
            repr(self._reserve_share),
            repr(self._max_booking),
            repr(self._urgent_hold),
        ]
        reply = await self._call(self._acquire_script, args, report)
        if reply is None:
            return self._acquire_locally(tokens, now)
        if reply.status == "ok":
            return 0.0
        wait = max(reply.wait, 1e-4)
        if reply.status == "booked":
            expiry = asyncio.get_running_loop().call_later(
                wait + max(1.0, self._max_booking), self._expire_booking
            )
            self._booking = _Booking(at=now + wait, tokens=int(tokens), expiry=expiry)
        return wait

    def _use_booking(self, tokens: int, now: float) -> float | None:
        """Seconds until the booking is due, 0.0 when it is used now, None without one."""
        booking = self._booking
        if booking is None:
            return None
        if now < booking.at:
            return booking.at - now
        self._drop_booking()
        if tokens <= booking.tokens:
            self._give(0.0, float(booking.tokens - tokens))
            return 0.0
        # Booked for a smaller job than the one now first: hand it back with the next report.
        self._give(1.0, float(booking.tokens))
        return None

    def _drop_booking(self) -> None:
        booking, self._booking = self._booking, None
        if booking is not None and booking.expiry is not None:
            booking.expiry.cancel()

    def _expire_booking(self) -> None:
        # The job it was for went away (cancelled, or the scheduler idles): give it back.
        booking = self._booking
        if booking is not None:
            self._drop_booking()
            self._give(1.0, float(booking.tokens))

    def _acquire_locally(self, tokens: int, now: float) -> float:
        if self._fallback == "pause":
            return self._retry_interval
        return self._fallback_limiter(now).try_acquire(tokens, now)

    def settle(self, reserved: int, used: int, now: float) -> None:
        if used == reserved:
            return
        if self._local is not None:
            self._local.settle(reserved, used, now)
            return
        self._give(0.0, float(reserved - used))
        if used < reserved:
            self._notify()

    def refund(self, reserved: int, now: float) -> None:
        if self._local is not None:
            self._local.refund(reserved, now)
            return
        self._give(1.0, float(reserved))
        self._notify()

    def _give(self, requests: float, tokens: float) -> None:
        if self._down_since is not None or self._closed:
            return  # Redis refills on its own; credit for an unreachable bucket is moot
        self._report.give_requests += requests
        self._report.give_tokens += tokens
        self._kick(urgent=False)

    # -- shared knowledge -------------------------------------------------------------------
    def pause_until(self, deadline: float, now: float, reason: str) -> None:
        if deadline <= self._paused_until:
            return
        self._paused_until = deadline
        if self._local is not None:
            self._local.pause_until(deadline, now, reason)
        report = self._report
        pause_at = _loop_time() + (deadline - now)
        if report.pause_at is None or pause_at > report.pause_at:
            report.pause_at, report.pause_reason = pause_at, reason
        self._kick(urgent=True)

    def set_limits(
        self,
        *,
        requests_per_second: float | None,
        tokens_per_minute: float | None,
        now: float,
        reason: str,
    ) -> None:
        rps, tpm = _rate(requests_per_second), _rate(tokens_per_minute)
        self._rps, self._tpm = rps, tpm
        self._report.limits = (rps, tpm, reason)
        if self._local is not None:
            share = self._fallback_share
            self._local.set_limits(
                requests_per_second=rps * share if rps else None,
                tokens_per_minute=tpm * share if tpm else None,
                now=now,
                reason=reason,
            )
        self._kick(urgent=True)
        self._notify()

    def observe_headers(self, headers: RateLimitHeaders, now: float) -> None:
        limits = stated_limits(headers, self._rps, self._tpm)
        if limits is not None:
            rps, tpm = limits
            self.set_limits(
                requests_per_second=rps, tokens_per_minute=tpm, now=now, reason="headers"
            )
        self._sync("requests", headers.requests_remaining, headers.requests_reset, now)
        self._sync("tokens", headers.tokens_remaining, headers.tokens_reset, now)

    def _sync(
        self, dimension: str, remaining: float | None, reset: float | None, now: float
    ) -> None:
        rule = resync(remaining, reset)
        if rule.pause is not None:
            self.pause_until(now + rule.pause, now, NONE_REMAIN_REASON)
            return
        if rule.clamp is None:
            return
        if dimension == "requests":
            self._report.clamp_requests = rule.clamp
        else:
            self._report.clamp_tokens = rule.clamp
        self._kick(urgent=False)

    def set_listener(self, listener: Callable[[], None]) -> None:
        self._listener = listener

    def _notify(self) -> None:
        if self._listener is not None:
            self._listener()

    # -- talking to Redis -------------------------------------------------------------------
    def _take_report(self) -> Report:
        report, self._report = self._report, Report()
        return report

    def _common_args(self, report: Report) -> list[str]:
        seed_rps = self._rps or 0.0
        seed_tpm = self._tpm or 0.0
        return [
            repr(self._burst_seconds),
            repr(_HEADROOM),
            str(int(self._ttl * 1000)),
            repr(seed_rps),
            repr(seed_tpm),
            self._seed_reason,
            "0" if self._configured else "1",
            "1" if self._seed_empty else "0",
            *report.args(_loop_time()),
        ]

    async def _call(self, script: AsyncScript, args: list[str], report: Report) -> Reply | None:
        """Run a script; on Redis trouble switch to the fallback and return None."""
        self._round_trips += 1
        try:
            async with asyncio.timeout(self._timeout * 4):
                raw = await script(keys=[self._key], args=args)
            reply = Reply.parse(raw)
        except self._errors as exc:
            self._report.keep_knowledge(report)
            self._went_down(exc)
            return None
        self._absorb(reply)
        return reply

    def _absorb(self, reply: Reply) -> None:
        self._last = reply
        self._configured = True
        self._seed_empty = False
        self._shared_pause_at = _loop_time() + reply.paused_for
        if (reply.requests_per_second, reply.tokens_per_minute) != (self._rps, self._tpm):
            # Another process changed the shared limits; after a Redis restart, seed with them.
            self._rps, self._tpm = reply.requests_per_second, reply.tokens_per_minute
            self._seed_reason = reply.reason

    def _kick(self, *, urgent: bool) -> None:
        """Make sure the report is sent: at once when urgent, else soon (or with an acquire)."""
        if self._down_since is not None or self._closed:
            return
        self._flush_now = self._flush_now or urgent
        if self._flusher is None or self._flusher.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside the loop: the next acquisition carries it
                return
            self._wake_flusher = asyncio.Event()
            self._flusher = loop.create_task(self._flush(), name="grok-scheduler-redis-report")
        elif urgent and self._wake_flusher is not None:
            self._wake_flusher.set()

    async def _flush(self) -> None:
        while not self._report.empty and self._down_since is None:
            if not self._flush_now and self._wake_flusher is not None:
                # Credit and clamps can wait a moment: an acquisition may carry them for free.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._flush_delay):
                        await self._wake_flusher.wait()
                self._wake_flusher.clear()
            self._flush_now = False
            report = self._take_report()
            if report.empty:
                continue
            await self._call(self._update_script, self._common_args(report), report)

    # -- Redis trouble ----------------------------------------------------------------------
    def _fallback_limiter(self, now: float) -> LocalLimiter:
        if self._local is None:
            share = self._fallback_share
            self._local = LocalLimiter(
                requests_per_second=self._rps * share if self._rps else None,
                tokens_per_minute=self._tpm * share if self._tpm else None,
                burst_seconds=self._burst_seconds,
                now=now,
            )
            # Start from this process's share of what Redis last said was left (nothing, if it
            # never answered): a full local burst on top of a drained server bucket is a 429
            # storm, and 429s make the whole pool back off for longer than any burst saves.
            last = self._last
            self._local.observe_headers(
                RateLimitHeaders(
                    requests_remaining=_share_of(last.requests_level if last else None, share),
                    tokens_remaining=_share_of(last.tokens_level if last else None, share),
                ),
                now,
            )
            if self._paused_until > now:
                self._local.pause_until(self._paused_until, now, "429")
            if self._listener is not None:
                self._local.set_listener(self._listener)
        return self._local

    def _went_down(self, exc: BaseException) -> None:
        if self._down_since is not None:
            return
        loop = asyncio.get_running_loop()
        self._down_since = loop.time()
        self._seed_empty = True
        self._drop_booking()
        _log.warning(
            "grok_scheduler.redis_unavailable",
            key=self._key,
            error_type=type(exc).__name__,
            fallback=self._fallback,
            fallback_share=self._fallback_share if self._fallback == "local" else None,
        )
        if not self._closed:
            self._probe = loop.create_task(self._reconnect(), name="grok-scheduler-redis-probe")

    async def _reconnect(self) -> None:
        # One probe about every retry_interval: never a tight loop against a dead server.
        while True:
            await asyncio.sleep(self._retry_interval)
            try:
                async with asyncio.timeout(self._timeout * 4):
                    await self._client.ping()
            except self._errors:
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
        if not self._report.empty:
            self._kick(urgent=True)
        self._notify()

    async def flush(self) -> None:
        """Send what this process has to report now (credit back, limits, pause) and wait."""
        if self._down_since is not None or self._closed:
            return
        if not self._report.empty:
            self._kick(urgent=True)
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            await asyncio.shield(flusher)

    async def aclose(self) -> None:
        """Send what is left to report (an unused booking goes back), then disconnect."""
        if self._closed:
            return
        if self._booking is not None:
            self._expire_booking()
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.wait([self._probe])
        if self._down_since is None and not self._report.empty:
            self._kick(urgent=True)
        self._closed = True
        flusher = self._flusher
        if flusher is not None:
            if self._wake_flusher is not None:
                self._wake_flusher.set()
            # Its Redis errors are handled inside; wait() keeps our own cancellation intact.
            await asyncio.wait([flusher])
        await self._client.aclose()


def _loop_time() -> float:
    # The event loop's clock (time.monotonic() on every standard loop), also outside the loop.
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


def _share_of(level: float | None, share: float) -> float:
    return max(0.0, level * share) if level is not None else 0.0
