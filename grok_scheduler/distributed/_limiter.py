"""RedisLimiter: one key's limits shared by every process and host that uses the key.

Every rule runs inside Redis as one atomic Lua script per acquisition (``_lua.py``), so the
processes never read-modify-write, lock or poll; the rules and their answers are LocalLimiter's
(``tests/limits/test_limiter_contract.py`` runs the same cases on both). What a process learns
and gives back travels in a report (``_courier.py``); Redis trouble is survived by a fallback
(``_fallback.py``); the fleet's sends and 429s are pooled in an acceptance log
(``_acceptance.py``) for the adaptive controller.

Which source wins: the newest :meth:`RedisLimiter.set_limits` or header change, from any
process, under the lowest configured limit of the processes alive on the key (configured limits
are ceilings: no process raises another's, nor exceeds its own); a pause is the later of the
stored one and the new one. A booking (credit set aside for a short wait) is used only after
asking Redis whether another process paused the fleet meanwhile.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Any

from .._limits._base import (
    NONE_REMAIN_REASON,
    LimiterState,
    RateLimitHeaders,
    stated_limits,
    without_stale_counts,
)
from ._booking import Booking
from ._connection import connect, limiter_key, redact, redis_key
from ._courier import Courier
from ._fallback import Fallback, FallbackPolicy
from ._fleet import FleetAcceptance
from ._link import Link, Settings, loop_time, lowest, positive, rate
from ._messages import Reply, Report, change_of

__all__ = ["DEFAULT_REDIS_URL", "FallbackPolicy", "RedisLimiter"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class RedisLimiter:
    """A :class:`~grok_scheduler.Limiter` whose credit lives in Redis, shared by all processes.

    ``Scheduler(..., limiter=RedisLimiter(url=..., key="team-a:grok-4", requests_per_second=40))``
    in every process; or :meth:`from_url` to derive the key from the API key and model. The
    configured limits are this process's ceilings, shared for ``ceiling_ttl`` seconds after its
    last word (refreshed while it lives). One process at a time probes the shared rate up: the
    one that last changed it otherwise, for ``probe_lease`` seconds after its last change.
    Needs the ``redis`` extra.
    """

    __slots__ = (
        "_acceptance",
        "_booking",
        "_closed",
        "_courier",
        "_fallback",
        "_link",
        "_listener",
        "_paused_until",
        "_proposed",
        "_rps",
        "_tpm",
        "_url",
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
        ceiling_ttl: float = 30.0,
        probe_lease: float = 5.0,
    ) -> None:
        if fallback not in ("local", "pause") or not 0 < fallback_share <= 1:
            raise ValueError(
                f"fallback must be 'local' or 'pause' (got {fallback!r}) and "
                "fallback_share in (0, 1]"
            )
        if not flush_delay >= 0:
            raise ValueError("flush_delay must be >= 0")
        own = (rate(requests_per_second), rate(tokens_per_minute))
        settings = Settings(
            key=redis_key(key),
            own=own,
            burst_seconds=float(burst_seconds),
            ttl=float(ttl),
            ceiling_ttl=float(ceiling_ttl),
            timeout=float(socket_timeout),
            reserve_share=float(reserve_share),
            max_booking=float(max_booking),
            urgent_hold=float(urgent_hold),
            probe_lease=float(probe_lease),
        )
        self._url = url
        self._rps, self._tpm = own
        self._fallback = Fallback(
            policy=fallback,
            share=float(fallback_share),
            retry_interval=positive("retry_interval", retry_interval),
            key=settings.key,
        )
        client, errors = connect(url, settings.timeout)
        self._link = Link(settings, client, errors, self._trouble, uuid.uuid4().hex)
        self._courier = Courier(
            delay=float(flush_delay), send=self._send, can_send=lambda: not self._fallback.down
        )
        self._acceptance: FleetAcceptance | None = None
        self._booking = Booking(grace=max(1.0, settings.max_booking), give=self._give)
        self._paused_until = -math.inf  # caller's clock
        self._listener: Callable[[], None] | None = None
        self._closed = False
        self._proposed = False  # it changed the shared limits (it may lead the probing)

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
        return self._link.settings.key

    @property
    def requests_per_second(self) -> float | None:
        return self._rps

    @property
    def tokens_per_minute(self) -> float | None:
        return self._tpm

    @property
    def measures_acceptance(self) -> bool:
        """False: other processes spend the same credit (see :meth:`fleet_acceptance`)."""
        return False

    @property
    def round_trips(self) -> int:
        """Script calls sent to Redis so far (acquisitions, reports, acceptance flushes)."""
        return self._link.round_trips

    @property
    def using_redis(self) -> bool:
        """False while Redis is unreachable and the fallback policy is in force."""
        return not self._fallback.down

    def state(self, now: float) -> LimiterState:
        last = self._link.last
        paused = max(self._paused_until - now, self._link.shared_pause_at - loop_time())
        return LimiterState(
            requests_per_second=self._rps,
            tokens_per_minute=self._tpm,
            requests_available=last.requests_level if last else None,
            tokens_available=last.tokens_level if last else None,
            paused_for=max(0.0, paused),
            last_change_reason=last.reason if last else "configured",
        )

    def __repr__(self) -> str:
        return (
            f"RedisLimiter(url={redact(self._url)!r}, key={self.key!r}, "
            f"requests_per_second={self._rps}, tokens_per_minute={self._tpm}, "
            f"fallback={self._fallback.policy!r}, using_redis={self.using_redis}, "
            f"round_trips={self.round_trips})"
        )

    # -- credit -----------------------------------------------------------------------------
    async def acquire(self, tokens: int, now: float, priority: int = 2) -> float:
        self._saw(now)
        if now < self._paused_until:
            return self._paused_until - now
        if self._booking.held:
            due = self._booking.wait(now)
            if due > 0.0:
                return due
            claimed = await self._claim(tokens, now)
            if claimed is not None:
                return claimed
        if self._fallback.down:
            return self._acquire_locally(tokens, now)
        reply = await self._link.acquire(self._courier.take(), tokens, priority)
        if reply is None:
            return self._acquire_locally(tokens, now)
        self._heard(reply, now)
        self._absorb_limits(reply.requests_per_second, reply.tokens_per_minute)
        if reply.status == "ok":
            return 0.0
        wait = max(reply.wait, 1e-4)
        if reply.status == "booked":
            self._booking.book(now, wait, int(tokens))
        return wait

    async def _claim(self, tokens: int, now: float) -> float | None:
        """Seconds to wait, 0.0 when the due booking is used now, None to ask Redis afresh."""
        booking = self._booking
        if tokens > booking.tokens or self._fallback.down:
            booking.hand_back()  # the fresh acquisition checks the pause itself
            return None
        # Another process may have paused the fleet since the booking was made (the server just
        # said 429): ask before sending into it. The report rides along.
        reply = await self._send(self._courier.take())
        if reply is None or not booking.held:
            return None  # Redis went away (the booking with it), or the booking expired
        if reply.paused_for > 0.0:
            self._heard(reply, now)
            booking.defer(now, reply.paused_for)
            return reply.paused_for
        booking.use(tokens)
        return 0.0

    def _acquire_locally(self, tokens: int, now: float) -> float:
        return self._fallback.acquire(
            tokens,
            now,
            limits=(self._rps, self._tpm),
            burst_seconds=self._link.settings.burst_seconds,
            last=self._link.last,
            paused_until=self._paused_until,
            listener=self._listener,
        )

    def settle(self, reserved: int, used: int, now: float) -> None:
        self._saw(now)
        if used == reserved:
            return
        if self._fallback.settle(reserved, used, now):
            return
        self._give(0.0, float(reserved - used))
        if used < reserved:
            self._notify()

    def refund(self, reserved: int, now: float) -> None:
        self._saw(now)
        if self._fallback.refund(reserved, now):
            return
        self._give(1.0, float(reserved))
        self._notify()

    def _give(self, requests: float, tokens: float) -> None:
        if self._fallback.down or self._closed:
            return  # Redis refills on its own; credit for an unreachable bucket is moot
        report = self._courier.report
        report.give_requests += requests
        report.give_tokens += tokens
        self._courier.kick(urgent=False)

    # -- shared knowledge -------------------------------------------------------------------
    def pause_until(self, deadline: float, now: float, reason: str) -> None:
        if deadline <= self._paused_until:
            return
        self._paused_until = deadline
        self._fallback.pause_until(deadline, now, reason)
        report = self._courier.report
        # Kept in the loop's clock too: re-asserted should the key be lost (``_lua.py``).
        pause_at = self._link.pause_at = loop_time() + (deadline - now)
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
        rps, tpm = rate(requests_per_second), rate(tokens_per_minute)
        report = self._courier.report
        if (
            change_of(reason) == "probe"
            and loop_time() < self._link.led_elsewhere_until
            and not self._fallback.down
        ):
            return  # another process leads the probing: Redis would refuse it (a round trip)
        report.set_limits(rps, tpm, reason)  # Redis's answer brings the limits in force
        self._proposed = True
        self._absorb_limits(rps, tpm)
        self._fallback.set_limits(self._rps, self._tpm, now, reason)
        self._kick(urgent=True)
        self._notify()

    def _absorb_limits(self, rps: float | None, tpm: float | None) -> None:
        # In force here only under this process's own ceiling (Redis applies it too).
        own = self._link.settings.own
        self._rps, self._tpm = lowest(rps, own[0]), lowest(tpm, own[1])

    def observe_headers(self, headers: RateLimitHeaders, now: float) -> None:
        limits = stated_limits(headers, self._rps, self._tpm)
        if limits is not None:
            rps, tpm = limits
            self.set_limits(
                requests_per_second=rps, tokens_per_minute=tpm, now=now, reason="headers"
            )
        report = self._courier.report
        # Redis clamps the shared level and cannot age a count by what was sent since it.
        pause = report.sync(without_stale_counts(headers, now), self._rps, self._tpm)
        if pause is not None:
            self.pause_until(now + pause, now, NONE_REMAIN_REASON)
        if not report.empty:
            self._kick(urgent=False)

    def set_listener(self, listener: Callable[[], None]) -> None:
        self._listener = listener

    def _notify(self) -> None:
        if self._listener is not None:
            self._listener()

    # -- the fleet's acceptance (``_acceptance.py``) ----------------------------------------
    def record_sent(self, now: float) -> None:
        """Count one request sent at ``now`` in the fleet's acceptance log."""
        if not self._closed:
            self._fleet().record_sent(now)

    def record_rejected(self, sent_at: float, dimension: str | None) -> None:
        """Count one 429 for a request sent at ``sent_at``, blamed on ``dimension`` if known."""
        if not self._closed:
            self._fleet().record_rejected(sent_at, dimension)

    def fleet_acceptance(
        self, start: float, end: float, dimension: str | None = None
    ) -> tuple[int, int] | None:
        """Sends and 429s of every process on the key whose send time is in ``[start, end)``.

        In this process's clock, to a 0.25 s slot. About half a second behind while 429s are
        about (every process flushes each slot then), up to 2 s behind a calm fleet: see
        :meth:`report_lag`. Rejections of ``dimension`` only when it is given. None when
        unknown: before the first exchange with Redis, while Redis is away, or for a window
        reaching further back than fetched so far (the next exchange fetches it).
        """
        if self._fallback.down or self._closed:
            return None
        return self._fleet().query(start, end, dimension)

    def report_lag(self) -> float | None:
        """Seconds behind now from which another process's sends may be missing from
        :meth:`fleet_acceptance` (the oldest watermark of the live processes); None unknown."""
        if self._fallback.down or self._closed or self._acceptance is None:
            return None
        return self._acceptance.report_lag()

    def _fleet(self) -> FleetAcceptance:
        # Created on first use: a process that never records nor asks costs Redis nothing.
        if self._acceptance is None:
            self._acceptance = FleetAcceptance(
                self._link, f"{self.key}:acceptance", self._link.process_id
            )
        return self._acceptance

    def _saw(self, now: float) -> None:
        if self._acceptance is not None and not (self._fallback.down or self._closed):
            self._acceptance.tick(now)

    def _heard(self, reply: Reply, now: float) -> None:
        """A pause in force means a 429 somewhere in the fleet: count and fetch every slot, so
        the process that saw it measures the fleet without waiting for this one's counts."""
        if reply.paused_for > 0.0 and self._acceptance is not None and not self._closed:
            self._acceptance.heat(now)

    # -- talking to Redis -------------------------------------------------------------------
    async def _send(self, report: Report, *, leaving: bool = False) -> Reply | None:
        reply = await self._link.update(report, leaving=leaving)
        if reply is not None:
            self._absorb_limits(reply.requests_per_second, reply.tokens_per_minute)
        return reply

    def _kick(self, *, urgent: bool) -> None:
        if not self._closed:
            self._courier.kick(urgent=urgent)

    def _trouble(self, exc: BaseException, report: Report) -> None:
        """A script call failed: keep what the report learned, and fall back."""
        self._courier.report.keep_knowledge(report)
        if self._fallback.went_down(exc, self._link, self._restored, probe=not self._closed):
            self._link.seed_empty = True
            self._booking.drop()

    def _restored(self) -> None:
        if not self._courier.report.empty:
            self._kick(urgent=True)
        self._notify()

    async def flush(self) -> None:
        """Send what this process has to report now (credit back, limits, pause) and wait.

        The acceptance log, once used, is exchanged too (counts sent, fleet totals fetched).
        """
        if self._fallback.down or self._closed:
            return
        await self._courier.flush()
        if self._acceptance is not None:
            await self._acceptance.flush()

    async def aclose(self) -> None:
        """Send what is left (an unused booking goes back), withdraw the ceiling, disconnect."""
        if self._closed:
            return
        self._booking.hand_back()
        await self._fallback.aclose()
        if not self._fallback.down:
            await self._courier.aclose()
        self._closed = True
        if self._acceptance is not None:
            await self._acceptance.aclose()
        report = self._courier.take()
        registered = self._link.last is not None and self._link.settings.own != (None, None)
        if not self._fallback.down and (registered or self._proposed or not report.empty):
            # One last word: what is left to report, this process's ceiling withdrawn and its
            # lead of the probing (if it has it) given up.
            await self._send(report, leaving=True)
        await self._link.aclose()
