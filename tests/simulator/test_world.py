"""The simulated world without sockets: 429 bodies, header triples, per-model limits, latency."""

from __future__ import annotations

import asyncio
import json
import math
import random
import statistics
from typing import Any

import pytest

from grok_scheduler import FakeClock
from grok_scheduler.simulator import LimitChange, ModelLimits, SimulatorConfig, VirtualServer
from grok_scheduler.simulator._headers import go_duration
from grok_scheduler.simulator._latency import draw_delay
from grok_scheduler.simulator._protocol import ModelCall

TEAM = "f1692451-0000-4000-8000-000000000000"
START = 1000.0


def chat(model: str = "grok-4.3", text: str = "hello world how are you") -> dict[str, Any]:
    """A chat body: 9 prompt tokens for the default text, 16 answer tokens: 25 in all."""
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def world(**options: Any) -> tuple[FakeClock, VirtualServer]:
    """A virtual server with no latency on a fake clock at ``START``."""
    options.setdefault("latency", 0.0)
    options.setdefault("team_id", TEAM)
    clock = FakeClock(START)
    return clock, VirtualServer(SimulatorConfig(**options), now=clock.now, sleep=clock.sleep)


async def send(server: VirtualServer, n: int = 1, **body: Any) -> list[tuple[int, str]]:
    """Send ``n`` chat calls now; return (status, error text or "") of each."""
    out = []
    for _ in range(n):
        status, raw, _ = await server.handle("chat/completions", chat(**body))
        out.append((status, json.loads(raw).get("error", "") if status != 200 else ""))
    return out


async def at(clock: FakeClock, t: float) -> None:
    """Move the clock to ``START + t``."""
    await clock.advance(START + t - clock.now())


# --- 429 bodies ----------------------------------------------------------------------------

EM = "\u2014"


@pytest.mark.parametrize(
    ("options", "calls", "text"),
    [
        (  # two per second; the third would have made it 3
            {"requests_per_second": 2},
            [(0.0, 3)],
            f"Too many requests for team {TEAM} and model grok-4.3. Your team's rate limit is "
            f"{EM} Requests per Second (actual/limit): 3/2.",
        ),
        (  # the hyphen form, and the form without "Your team's rate limit is"
            {"requests_per_second": 2, "rate_limit_dash": "-"},
            [(0.0, 3)],
            f"Too many requests for team {TEAM} and model grok-4.3. Your team's rate limit is "
            "- Requests per Second (actual/limit): 3/2.",
        ),
        (
            {"requests_per_second": 2, "rate_limit_preamble": False},
            [(0.0, 3)],
            f"Too many requests for team {TEAM} and model grok-4.3. "
            "Requests per Second (actual/limit): 3/2.",
        ),
        (  # only the minute binds: 3 spent, 0.05 refilled
            {"requests_per_second": 2, "requests_per_minute": 3},
            [(0.0, 2), (1.0, 2)],
            f"Too many requests for team {TEAM} and model grok-4.3. Your team's rate limit is "
            f"{EM} Requests per Minute (actual/limit): 4/3.",
        ),
        (  # both bind: both are stated, the second first
            {"requests_per_second": 1, "requests_per_minute": 2},
            [(0.0, 1), (1.0, 2)],
            f"Too many requests for team {TEAM} and model grok-4.3. Your team's rate limit is "
            f"{EM} Requests per Second (actual/limit): 2/1, "
            "Requests per Minute (actual/limit): 3/2.",
        ),
        (  # 4 calls of 25 tokens fit in 100; the fifth would have made it 125
            {"requests_per_second": None, "tokens_per_minute": 100},
            [(0.0, 5)],
            f"Too many tokens for team {TEAM} and model grok-4.3. Your team's rate limit is "
            f"{EM} Tokens per Minute (actual/limit): 125/100.",
        ),
    ],
)
async def test_xai_bodies_state_actual_and_limit(
    options: dict[str, Any], calls: list[tuple[float, int]], text: str
) -> None:
    """In xai mode the last refused call's body states every binding limit, as xAI words it."""
    clock, server = world(rate_limit_body="xai", **options)
    answers: list[tuple[int, str]] = []
    for t, n in calls:
        await at(clock, t)
        answers += await send(server, n)
    status, message = answers[-1]
    assert status == 429 and message == text
    assert [s for s, _ in answers[:-1]] == [200] * (len(answers) - 1)


async def test_plain_bodies_are_unchanged() -> None:
    """The default wording stays the simulator's original one."""
    _, server = world(requests_per_second=1)
    assert (await send(server, 2))[1] == (
        429,
        "Rate limit exceeded: requests per second. Your team's limit is 1 requests per second; "
        "please slow down.",
    )


async def test_unavailable_model_is_0_of_0_in_every_mode() -> None:
    """A model with limits 0/0 always gets xAI's 0/0 body; it is not counted as rate limited."""
    for mode in ("plain", "xai"):
        _, server = world(
            rate_limit_body=mode,
            rate_limit_dash="-",
            model_limits={"grok-4.5": ModelLimits.unavailable()},
        )
        status, raw, _ = await server.handle("chat/completions", chat("grok-4.5"))
        assert status == 429 and json.loads(raw) == {
            "code": "Some resource has been exhausted",
            "error": f"Too many requests for team {TEAM} and model grok-4.5. Your team's rate "
            "limit is - Requests per Minute (actual/limit): 0/0.",
        }
        assert (await send(server, 1, model="grok-4.3"))[0][0] == 200
        assert server.stats.unavailable == 1 and server.stats.rate_limited == 0
        response = await server.respond("chat/completions", chat("grok-4.5"))
        assert response.refused == "unavailable"


# --- per-model limits ----------------------------------------------------------------------


async def test_each_model_has_its_own_buckets() -> None:
    """Exhausting one model leaves the others whole; named models get their own limits."""
    clock, server = world(
        requests_per_second=2,
        tokens_per_minute=None,
        model_limits={"grok-4": ModelLimits(requests_per_second=1, tokens_per_minute=16000)},
    )
    assert [s for s, _ in await send(server, 3, model="grok-4.3")] == [200, 200, 429]
    assert [s for s, _ in await send(server, 2, model="grok-3-mini")] == [200, 200]
    assert [s for s, _ in await send(server, 2, model="grok-4")] == [200, 429]
    await at(clock, 1.0)
    assert [s for s, _ in await send(server, 2, model="grok-4")] == [200, 429]
    assert server.stats.accepted_by_model == {"grok-4.3": 2, "grok-3-mini": 2, "grok-4": 2}


async def test_unknown_model_is_still_404() -> None:
    """With a model list, an unknown model is a 404, not a limit."""
    _, server = world(model_names=("grok-4.3",))
    status, raw, _ = await server.handle("/v1/chat/completions", chat("grok-9"))
    assert status == 404 and json.loads(raw)["code"] == "Some requested entity was not found"


# --- header triples ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "neighbour", "requests", "tokens"),
    [
        ("openai-60s", 0.0, ("600", "597", "300ms"), ("6000", "5925", "750ms")),
        ("openai-1s", 0.0, ("10", "7", "300ms"), ("100", "25", "750ms")),
        ("openai-day", 0.0, ("864000", "863997", "300ms"), ("6000", "5925", "750ms")),
        # a neighbour halves the refill: the limit stays advertised, the reset doubles
        ("openai-60s", 0.5, ("600", "597", "600ms"), ("6000", "5925", "1.5s")),
    ],
)
async def test_header_triples_agree_with_the_bucket(
    mode: str, neighbour: float, requests: tuple[str, ...], tokens: tuple[str, ...]
) -> None:
    """limit is the rate times the window; (limit - remaining) / reset is the real refill."""
    _, server = world(
        requests_per_second=10,
        tokens_per_minute=6000,
        headers=mode,
        neighbour_share=neighbour,
    )
    for _ in range(3):  # 3 requests, 75 tokens
        status, _, headers = await server.handle("chat/completions", chat())
        assert status == 200
    got_requests = tuple(
        headers[f"x-ratelimit-{k}-requests"] for k in ("limit", "remaining", "reset")
    )
    got_tokens = tuple(headers[f"x-ratelimit-{k}-tokens"] for k in ("limit", "remaining", "reset"))
    assert (got_requests, got_tokens) == (requests, tokens)
    keep = 1 - neighbour
    for (limit, remaining, reset), rate in ((got_requests, 10 * keep), (got_tokens, 100 * keep)):
        seconds = float(reset.removesuffix("ms")) / 1000 if reset.endswith("ms") else None
        seconds = seconds if seconds is not None else float(reset.removesuffix("s"))
        assert (float(limit) - float(remaining)) / seconds == pytest.approx(rate)


async def test_groq_like_day_window() -> None:
    """14400 requests a day: one request spent reads 14399 with 6 s until full."""
    _, server = world(requests_per_second=14400 / 86400, headers="openai-day")
    _, _, headers = await server.handle("chat/completions", chat())
    assert headers["x-ratelimit-limit-requests"] == "14400"
    assert headers["x-ratelimit-remaining-requests"] == "14399"
    assert headers["x-ratelimit-reset-requests"] == go_duration(6.0) == "6s"


async def test_window_headers_on_a_429_carry_retry_after() -> None:
    """A refused call gets the triple plus retry-after and retry-after-ms."""
    _, server = world(requests_per_second=2, headers="openai-1s")
    for _ in range(3):
        status, _, headers = await server.handle("chat/completions", chat())
    assert status == 429
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "1s"
    assert headers["retry-after"] == "0.5" and headers["retry-after-ms"] == "500"


async def test_ietf_states_a_per_minute_request_policy() -> None:
    """With a per-minute request limit the IETF family names it as a policy of its own."""
    _, server = world(requests_per_second=4, requests_per_minute=100, headers="ietf")
    _, _, headers = await server.handle("chat/completions", chat())
    assert headers["RateLimit-Policy"] == '"requests";q=4;w=1, "requests-minute";q=100;w=60'
    assert headers["RateLimit"] == '"requests";r=3;t=1, "requests-minute";r=99;t=1'


# --- latency -------------------------------------------------------------------------------

CALL = ModelCall("m", 5, 10, 10, 25, capped=False, stream=False, topic="t")


def test_lognormal_latency_is_seeded_heavy_tailed_and_bounded() -> None:
    """Median = latency, tails of tens of seconds, capped at latency_max, replayed by a seed."""
    config = SimulatorConfig(latency=5.0, latency_dist="lognormal", latency_sigma=1.0)
    config.latency_max = 120.0
    draws = [draw_delay(config, CALL, random.Random(7)) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]
    rng = random.Random(1)
    delays = [draw_delay(config, CALL, rng) for _ in range(4000)]
    assert statistics.median(delays) == pytest.approx(5.0, rel=0.1)
    assert max(delays) > 30.0 and max(delays) <= 120.0
    assert min(delays) > 0.0
    assert sum(d > 30.0 for d in delays) / len(delays) == pytest.approx(0.037, abs=0.015)


def test_lognormal_adds_per_token_time_and_fixed_ignores_jitter() -> None:
    """Per-output-token time adds to any distribution; fixed means exactly the latency."""
    config = SimulatorConfig(latency=1.0, latency_per_token=0.01, latency_dist="lognormal")
    assert draw_delay(config, CALL, random.Random(0)) == pytest.approx(1.2)  # sigma 0
    config = SimulatorConfig(latency=1.0, latency_jitter=0.5, latency_dist="fixed")
    assert draw_delay(config, CALL, random.Random(0)) == 1.0


async def test_virtual_latency_follows_the_seed() -> None:
    """Two worlds with one seed answer after the same virtual delays."""
    finished = []
    for _ in range(2):
        clock, server = world(latency=2.0, latency_dist="lognormal", latency_sigma=0.8, seed=3)
        server.config.requests_per_second = None
        times = []
        for _ in range(5):
            task = server.handle("chat/completions", chat())
            start = clock.now()
            future = asyncio.ensure_future(task)
            await clock.run_until_done(future)
            times.append(clock.now() - start)
        finished.append(times)
    assert finished[0] == finished[1] and len(set(finished[0])) == 5


# --- limit changes and the neighbour -------------------------------------------------------


async def test_limit_halves_at_its_moment() -> None:
    """The old rate refills up to the change, the new one after it, wherever requests fall."""
    clock, server = world(
        requests_per_second=10,
        limit_changes=(LimitChange(after=10.0, factor=0.5),),
        model_limits={"grok-4": ModelLimits(requests_per_second=10)},
    )
    await at(clock, 9.8)
    assert [s for s, _ in await send(server, 12)].count(200) == 10
    await at(clock, 10.2)
    # 2 refilled at 10/s up to t=10, then 0.2 s at 5/s: 3, not the 4 a late look would give.
    assert [s for s, _ in await send(server, 6)].count(200) == 3
    await at(clock, 20.0)
    assert [s for s, _ in await send(server, 12)].count(200) == 5  # capacity 5 now


async def test_limit_change_of_one_model_leaves_the_others() -> None:
    """A change naming a model applies to it alone, and changes compound."""
    changes = (LimitChange(5.0, 0.5, "grok-4"), LimitChange(6.0, 0.5, "grok-4"))
    clock, server = world(requests_per_second=8, limit_changes=changes)
    await at(clock, 7.0)
    assert [s for s, _ in await send(server, 10, model="grok-4")].count(200) == 2
    assert [s for s, _ in await send(server, 10, model="grok-4.3")].count(200) == 8


async def test_neighbour_takes_its_share_of_steady_pressure() -> None:
    """With half the key used elsewhere, 10 s of pressure at 10 rps yields 10 + 50 calls."""
    clock, server = world(requests_per_second=10, neighbour_share=0.5)
    accepted = 0
    for step in range(201):  # a call every 50 ms for 10 s
        await at(clock, step * 0.05)
        accepted += (await send(server))[0][0] == 200
    assert accepted == 60
    assert math.isclose(server.stats.max_accepted_in_window(1.0), 10 + 5 * 0.95, abs_tol=1)
