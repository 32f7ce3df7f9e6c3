"""Building blocks for virtual-time tests: canned responses and a scripted mock server."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from grok_scheduler import FakeClock, MockTransport, Scheduler, TransportResponse

TEST_KEY = "xai-TESTKEYdoNotLeak0123456789abcdef"


def chat_body(
    text: str = "ok",
    *,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    reasoning_tokens: int = 0,
) -> dict[str, Any]:
    """A chat-completions body as xAI sends it (reasoning outside completion, inside total)."""
    return {
        "id": "resp-1",
        "model": "grok-4",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens + reasoning_tokens,
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "prompt_tokens_details": {"cached_tokens": 0},
            "cost_in_usd_ticks": 1000,
        },
    }


def ok(text: str = "ok", **usage: int) -> TransportResponse:
    """A 200 response."""
    return TransportResponse(
        200, json.dumps(chat_body(text, **usage)).encode(), {"x-request-id": "req-ok"}
    )


def error(
    status: int,
    message: str,
    code: str = "Some resource has been exhausted",
    headers: dict[str, str] | None = None,
) -> TransportResponse:
    """A flat xAI error body."""
    body = json.dumps({"code": code, "error": message}).encode()
    return TransportResponse(status, body, {"x-request-id": "req-err", **(headers or {})})


class Server:
    """A scripted fake API: records who was sent when, answers from a script or a function."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        latency: float = 0.1,
        answer: Callable[[dict[str, Any]], TransportResponse] | None = None,
    ) -> None:
        self.clock = clock
        self.latency = latency
        self.answer = answer or (lambda body: ok(_prompt_of(body)))
        self.script: list[TransportResponse | None] = []  # None: hang forever
        self.sent: list[tuple[float, str]] = []

    async def __call__(self, path: str, body: dict[str, Any]) -> TransportResponse:
        self.sent.append((self.clock.now(), _prompt_of(body)))
        if self.script:
            scripted = self.script.pop(0)
            if scripted is None:
                await self.clock.sleep(10**9)
                raise AssertionError("unreachable")
            await self.clock.sleep(self.latency)
            return scripted
        await self.clock.sleep(self.latency)
        return self.answer(body)

    @property
    def prompts(self) -> list[str]:
        return [prompt for _, prompt in self.sent]


def _prompt_of(body: dict[str, Any]) -> str:
    if "messages" in body:
        return str(body["messages"][-1]["content"])
    return str(body.get("input"))


def make_scheduler(clock: FakeClock, server: Server, **options: Any) -> Scheduler:
    """A scheduler on virtual time talking to ``server`` through a MockTransport."""
    options.setdefault("max_concurrency", 4)
    # Jitter is random by design; a fixed seed keeps virtual-time tests deterministic.
    options.setdefault("rng", random.Random(0))
    return Scheduler(
        api_key=TEST_KEY, clock=clock, transport=MockTransport(server, clock=clock), **options
    )


class LimitedServer(Server):
    """A fake API that enforces requests/s strictly (a bucket of one second) and sends no headers.

    ``rps`` can be changed while running; ``rejected`` counts 429s and ``token_limited`` makes
    every 429 say it was about tokens.
    """

    def __init__(self, clock: FakeClock, *, rps: float, latency: float = 0.05) -> None:
        super().__init__(clock, latency=latency)
        self.rps = rps
        self._level = rps
        self._updated = clock.now()
        self.accepted = 0
        self.rejected = 0
        self.token_limited = False

    def _admit(self) -> bool:
        now = self.clock.now()
        self._level = min(self.rps, self._level + (now - self._updated) * self.rps)
        self._updated = now
        if self._level >= 1.0 - 1e-9:
            self._level -= 1.0
            return True
        return False

    async def __call__(self, path: str, body: dict[str, Any]) -> TransportResponse:
        self.sent.append((self.clock.now(), _prompt_of(body)))
        if not self._admit():
            self.rejected += 1
            what = "tokens per minute" if self.token_limited else "requests per second"
            return error(429, f"Rate limit exceeded: {what}")
        self.accepted += 1
        await self.clock.sleep(self.latency)
        return ok(_prompt_of(body))
