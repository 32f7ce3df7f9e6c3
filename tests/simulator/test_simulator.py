"""The local xAI simulator: protocol shape, strict limits, header modes, faults and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from grok_scheduler.simulator import FAULT_KINDS, Simulator, SimulatorConfig, SimulatorStats
from grok_scheduler.simulator._cli import add_simulate_parser, config_from_args
from grok_scheduler.simulator._headers import go_duration
from grok_scheduler.simulator._limits import ServerLimits
from grok_scheduler.simulator._protocol import ModelCall

SimulatorFactory = Callable[[SimulatorConfig | None], Awaitable[Simulator]]
KEY = "xai-SimulatorTestKey-0123456789"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RATE_HEADER_PREFIXES = ("x-ratelimit", "ratelimit", "retry-after")


def chat(text: str = "hello world how are you", **extra: Any) -> dict[str, Any]:
    """A chat request body with one user message."""
    return {"model": "grok-4.3", "messages": [{"role": "user", "content": text}], **extra}


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session sending a bearer key."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as s:
        yield s


async def call(
    session: aiohttp.ClientSession, url: str, body: object = None, *, method: str = "POST"
) -> tuple[int, dict[str, str], bytes]:
    """Send one request; return status, lower-cased headers and raw body."""
    data = None if body is None else json.dumps(body).encode()
    async with session.request(method, url, data=data) as response:
        raw = await response.read()
        return response.status, {k.lower(): v for k, v in response.headers.items()}, raw


async def burst(
    session: aiohttp.ClientSession, url: str, n: int, body: object = None
) -> list[tuple[int, dict[str, str], bytes]]:
    """Send ``n`` chat requests at once."""
    return await asyncio.gather(*(call(session, url, body or chat(f"q{i}")) for i in range(n)))


# --- protocol ----------------------------------------------------------------------------


async def test_chat_happy_path(simulator: Simulator, session: aiohttp.ClientSession) -> None:
    """A chat completion answers with the prompt's first words, usage and a request id."""
    status, headers, raw = await call(session, f"{simulator.base_url}/chat/completions", chat())
    assert status == 200
    body = json.loads(raw)
    assert UUID.match(headers["x-request-id"]) and body["id"] == headers["x-request-id"]
    assert body["object"] == "chat.completion" and body["model"] == "grok-4.3"
    choice = body["choices"][0]
    assert choice["message"]["content"] == "Simulated answer to: hello world how are you"
    assert choice["finish_reason"] == "stop"
    # "hello world how are you" is 23 characters: 6 tokens, plus 3 per message.
    usage = body["usage"]
    assert usage["prompt_tokens"] == 9 and usage["completion_tokens"] == 16
    assert usage["total_tokens"] == 25
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    assert usage["cost_in_usd_ticks"] == 9 * 2_000 + 16 * 5_000
    assert not [h for h in headers if h.startswith(RATE_HEADER_PREFIXES)]
    assert simulator.stats.accepted == 1 and simulator.stats.tokens == 25


async def test_reasoning_is_outside_completion_but_inside_total(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """Reasoning tokens are counted in total_tokens only; max_tokens caps the answer."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, reasoning_tokens=7))
    body = chat("abcd", max_tokens=4)
    status, _, raw = await call(session, f"{sim.base_url}/chat/completions", body)
    answer = json.loads(raw)
    usage = answer["usage"]
    assert status == 200 and answer["choices"][0]["finish_reason"] == "length"
    assert usage["prompt_tokens"] == 4 and usage["completion_tokens"] == 4
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 7
    assert usage["total_tokens"] == 4 + 4 + 7
    assert sim.stats.tokens == 15


async def test_responses_api_shape(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """/v1/responses answers in Responses format, without output_text, reasoning in output."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, reasoning_tokens=10))
    body = {
        "model": "grok-4.3",
        "instructions": "be brief",
        "input": "what is the capital of France",
        "max_output_tokens": 20,
    }
    status, headers, raw = await call(session, f"{sim.base_url}/responses", body)
    answer = json.loads(raw)
    assert status == 200 and answer["id"] == headers["x-request-id"]
    assert "output_text" not in answer
    message = answer["output"][-1]
    assert message["type"] == "message"
    assert message["content"][0] == {
        "type": "output_text",
        "text": "Simulated answer to: what is the capital of France",
        "annotations": [],
    }
    usage = answer["usage"]
    # instructions 8 chars -> 2 + 3; input 29 chars -> 8 + 3
    assert usage["input_tokens"] == 16
    assert usage["output_tokens"] == 20  # 10 reasoning + 10 visible: capped by max_output_tokens
    assert usage["output_tokens_details"]["reasoning_tokens"] == 10
    assert usage["total_tokens"] == 36
    assert answer["status"] == "incomplete"


async def test_responses_input_list(simulator: Simulator, session: aiohttp.ClientSession) -> None:
    """A list input of messages with content parts is accepted and answered."""
    body = {
        "model": "m",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "list input"}]}],
    }
    status, _, raw = await call(session, f"{simulator.base_url}/responses", body)
    assert status == 200
    assert json.loads(raw)["output"][0]["content"][0]["text"].endswith("list input")


async def test_chat_streaming_ends_with_usage_and_done(
    simulator: Simulator, session: aiohttp.ClientSession
) -> None:
    """stream=true answers with SSE chunks, a final usage chunk and [DONE]."""
    url = f"{simulator.base_url}/chat/completions"
    status, headers, raw = await call(session, url, chat("stream me", stream=True))
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in raw.decode().split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Simulated answer to: stream me"
    assert chunks[-1]["usage"]["total_tokens"] == 3 + 3 + 16


async def test_models_api_key_and_tokenize(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """Model list, key status (masked) and tokenize-text, which costs a request."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, model_names=("grok-a", "grok-b")))
    status, _, raw = await call(session, f"{sim.base_url}/models", method="GET")
    assert status == 200 and [m["id"] for m in json.loads(raw)["data"]] == ["grok-a", "grok-b"]
    status, _, raw = await call(session, f"{sim.base_url}/api-key", method="GET")
    info = json.loads(raw)
    assert status == 200 and info["redacted_api_key"] == "xa***89" and KEY not in raw.decode()
    assert info["api_key_blocked"] is False
    body = {"model": "grok-a", "text": "hello world"}
    status, _, raw = await call(session, f"{sim.base_url}/tokenize-text", body)
    tokens = json.loads(raw)["token_ids"]
    assert status == 200 and len(tokens) == 3
    assert "".join(t["string_token"] for t in tokens) == "hello world"
    assert sim.stats.accepted == 1


# --- errors ------------------------------------------------------------------------------


async def test_missing_auth_is_401(simulator: Simulator) -> None:
    """No Authorization header: 401 with a flat error body."""
    async with aiohttp.ClientSession() as bare:
        status, headers, raw = await call(bare, f"{simulator.base_url}/chat/completions", chat())
    assert status == 401 and json.loads(raw) == {"error": "Unauthorized"}
    assert "x-request-id" in headers
    assert simulator.stats.auth_failures == 1 and simulator.stats.accepted == 0


async def test_wrong_key_is_400_with_masked_key(make_simulator: SimulatorFactory) -> None:
    """A wrong key is a 400 whose message masks the key and never echoes it."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, api_key="the-right-key-000"))
    wrong = "xai-wrong-key-abcdefb2"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {wrong}"}) as s:
        status, _, raw = await call(s, f"{sim.base_url}/chat/completions", chat())
    body = json.loads(raw)
    assert status == 400 and body["code"] == "Client specified an invalid argument"
    assert body["error"].startswith("Incorrect API key provided: xa***b2")
    assert wrong not in raw.decode() and "the-right-key" not in raw.decode()
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer the-right-key-000"}) as s:
        status, _, _ = await call(s, f"{sim.base_url}/chat/completions", chat())
    assert status == 200 and sim.stats.auth_failures == 1


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/chat/completions", b"{not json", 400),
        ("/chat/completions", {"model": "m"}, 400),
        ("/chat/completions", {"model": "m", "messages": []}, 400),
        ("/chat/completions", chat(max_tokens=0), 400),
        ("/chat/completions", chat(temperature=9), 400),
        ("/chat/completions", chat("x" * 600_000), 400),
        ("/responses", {"model": "m"}, 400),
        # stream=true is served since issue 14; a stream flag that is not a boolean is not.
        ("/responses", {"model": "m", "input": "x", "stream": "yes"}, 400),
        ("/tokenize-text", {"model": "m"}, 400),
        ("/nope", {}, 404),
    ],
)
async def test_bad_requests_get_flat_errors(
    simulator: Simulator,
    session: aiohttp.ClientSession,
    path: str,
    body: object,
    status: int,
) -> None:
    """Invalid bodies and unknown routes get flat {code, error} bodies and consume nothing."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with session.post(f"{simulator.base_url}{path}", data=data) as response:
        got = json.loads(await response.read())
        assert response.status == status
        assert "x-request-id" in response.headers
    assert set(got) == {"code", "error"} and got["error"]
    assert simulator.stats.accepted == 0


async def test_oversized_prompt_message(
    simulator: Simulator, session: aiohttp.ClientSession
) -> None:
    """A prompt over the context says so with xAI's wording."""
    url = f"{simulator.base_url}/chat/completions"
    _, _, raw = await call(session, url, chat("x" * 600_000))
    assert (
        "maximum prompt length is 131072 but the request contains 150003 tokens"
        in (json.loads(raw)["error"])
    )


async def test_unknown_model_is_404_and_wrong_method_405(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """With a model list, an unknown model is a 404; GET on a POST route is a 405."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, model_names=("grok-4.3",)))
    status, _, raw = await call(
        session, f"{sim.base_url}/chat/completions", chat() | {"model": "x"}
    )
    assert status == 404 and json.loads(raw)["code"] == "Some requested entity was not found"
    status, _, _ = await call(session, f"{sim.base_url}/chat/completions", method="GET")
    assert status == 405


# --- limits ------------------------------------------------------------------------------


async def test_request_rate_limit_rejects_excess_burst(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """Over the request bucket, 429s carry the flat rate-limit body and no headers by default."""
    # Capacity 5 with a slow refill, so a slow machine cannot blur the count.
    config = SimulatorConfig(latency=0.0, requests_per_second=0.5, burst_seconds=10)
    sim = await make_simulator(config)
    results = await burst(session, f"{sim.base_url}/chat/completions", 15)
    statuses = [status for status, _, _ in results]
    assert statuses.count(200) == 5 and statuses.count(429) == 10
    _, headers, raw = next(r for r in results if r[0] == 429)
    body = json.loads(raw)
    assert body["code"] == "Some resource has been exhausted"
    assert body["error"].startswith("Rate limit exceeded: requests per second")
    assert not [h for h in headers if h.startswith(RATE_HEADER_PREFIXES)]
    stats = sim.stats
    assert stats.rate_limited == stats.rate_limited_requests == 10 and stats.accepted == 5
    assert stats.max_accepted_in_window(1.0) == 5
    assert stats.tokens == 5 * (1 + 3 + 16)  # 'qN' is one token


async def test_token_reservation_is_refunded_after_the_answer(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """max_tokens is reserved at admission and refunded to the real total when answered."""
    config = SimulatorConfig(latency=0.2, requests_per_second=None, tokens_per_minute=1000)
    sim = await make_simulator(config)
    url = f"{sim.base_url}/chat/completions"
    big = chat("abcd", max_tokens=900)  # reserves 7 + 900, uses 7 + 16
    first, second = await asyncio.gather(call(session, url, big), call(session, url, big))
    assert sorted([first[0], second[0]]) == [200, 429]
    rejected = first if first[0] == 429 else second
    assert json.loads(rejected[2])["error"].startswith("Rate limit exceeded: tokens per minute")
    assert (await call(session, url, big))[0] == 200  # the refund made room again
    assert sim.stats.rate_limited_tokens == 1


async def test_request_larger_than_token_limit_is_always_rejected(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """A request reserving more than the whole minute's tokens can never be admitted."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, tokens_per_minute=100))
    status, _, raw = await call(session, f"{sim.base_url}/chat/completions", chat("a" * 400))
    assert status == 429 and "tokens per minute" in json.loads(raw)["error"]


async def test_set_limits_applies_immediately(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """Lowering the rate clamps the bucket at once; None lifts the limit."""
    config = SimulatorConfig(latency=0.0, requests_per_second=100, burst_seconds=4)
    sim = await make_simulator(config)
    url = f"{sim.base_url}/chat/completions"
    sim.set_limits(requests_per_second=0.5)  # capacity 400 -> 2
    assert [s for s, _, _ in await burst(session, url, 6)].count(200) == 2
    sim.set_limits(requests_per_second=None)
    assert [s for s, _, _ in await burst(session, url, 6)].count(200) == 6
    sim.set_limits(tokens_per_minute=10)
    assert sim.config.requests_per_second is None
    assert (await call(session, url, chat()))[0] == 429
    with pytest.raises(ValueError):
        sim.set_limits(requests_per_second=-1)
    assert sim.config.requests_per_second is None


async def test_limits_follow_direct_config_changes(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """Mutating the live config is honoured on the next request."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, requests_per_second=None))
    sim.config.burst_seconds = 6
    sim.config.requests_per_second = 0.5
    results = await burst(session, f"{sim.base_url}/chat/completions", 5)
    assert [s for s, _, _ in results].count(200) == 3


def test_buckets_refill_and_neighbour_takes_its_share() -> None:
    """The neighbour's share of the refill never reaches us; a rejection charges nothing."""
    limits = ServerLimits(
        requests_per_second=10,
        tokens_per_minute=600,
        burst_seconds=1.0,
        neighbour_share=0.5,
        now=0.0,
    )
    assert sum(limits.try_admit(1, 0.0) is None for _ in range(12)) == 10
    rejection = limits.try_admit(1, 0.0)
    assert rejection is not None and rejection.dimension == "requests"
    assert rejection.retry_after == pytest.approx(0.2)  # 1 request at 5/s, not 10/s
    assert sum(limits.try_admit(1, 1.0) is None for _ in range(10)) == 5
    # tokens: 600 - 10, plus 1 s of our half of 10/s (capped at 600), minus 5
    assert limits.tokens is not None and limits.tokens.level == pytest.approx(590)


def test_token_settlement_and_resize() -> None:
    """settle() refunds unused reservation up to capacity; resize clamps the level."""
    limits = ServerLimits(
        requests_per_second=None,
        tokens_per_minute=1000,
        burst_seconds=1.0,
        neighbour_share=0.0,
        now=0.0,
    )
    assert limits.try_admit(900, 0.0) is None
    rejection = limits.try_admit(200, 0.0)
    assert rejection is not None and rejection.dimension == "tokens"
    assert rejection.retry_after == pytest.approx(100 / (1000 / 60))
    limits.settle(900, 50, 0.0)
    assert limits.tokens is not None and limits.tokens.level == pytest.approx(950)
    limits.configure(
        requests_per_second=None,
        tokens_per_minute=300,
        burst_seconds=1.0,
        neighbour_share=0.0,
        now=0.0,
    )
    assert limits.tokens.level == pytest.approx(300)
    assert limits.try_admit(301, 0.0) is not None


def test_max_accepted_in_window_slides() -> None:
    """The sliding count uses half-open windows over the arrival times."""
    stats = SimulatorStats(accepted_times=[0.0, 0.1, 0.5, 1.0, 1.05, 1.09, 3.0])
    assert stats.max_accepted_in_window(1.0) == 5  # 0.1 .. 1.09
    assert stats.max_accepted_in_window(0.1) == 3  # 1.0, 1.05, 1.09
    assert stats.max_accepted_in_window(10.0) == 7
    assert SimulatorStats().max_accepted_in_window(1.0) == 0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (0.12, "120ms"),
        (1.0, "1s"),
        (360.0, "6m0s"),
        (179.56, "2m59.56s"),
        (3723.0, "1h2m3s"),
    ],
)
def test_go_duration(seconds: float, text: str) -> None:
    """Reset headers are Go-style durations."""
    assert go_duration(seconds) == text


# --- header modes ------------------------------------------------------------------------


async def test_openai_headers_on_success_and_429(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """OpenAI mode reports per-minute limits, remaining, resets and retry-after on 429."""
    config = SimulatorConfig(
        latency=0.0,
        requests_per_second=2,
        tokens_per_minute=6000,
        headers="openai",
        neighbour_share=0.5,
    )
    sim = await make_simulator(config)
    results = await burst(session, f"{sim.base_url}/chat/completions", 3)
    ok = [h for s, h, _ in results if s == 200]
    limited = [h for s, h, _ in results if s == 429]
    assert len(ok) == 2 and len(limited) == 1
    for headers in ok + limited:
        assert headers["x-ratelimit-limit-requests"] == "120"  # the full limit, not our share
        assert headers["x-ratelimit-limit-tokens"] == "6000"
    assert sorted(h["x-ratelimit-remaining-requests"] for h in ok) == ["0", "1"]
    retry = float(limited[0]["retry-after"])
    assert 0.5 < retry <= 1.0  # one request at 2/s * (1 - 0.5), less what refilled meanwhile
    assert float(limited[0]["retry-after-ms"]) == pytest.approx(retry * 1000, abs=1)
    assert re.fullmatch(r"[0-9.]+(ms|s)", limited[0]["x-ratelimit-reset-requests"])


async def test_ietf_headers(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """IETF mode sends RateLimit-Policy and RateLimit structured fields."""
    config = SimulatorConfig(
        latency=0.0, requests_per_second=4, tokens_per_minute=6000, headers="ietf"
    )
    sim = await make_simulator(config)
    status, headers, _ = await call(session, f"{sim.base_url}/chat/completions", chat())
    assert status == 200
    assert headers["ratelimit-policy"] == '"requests";q=4;w=1, "tokens";q=6000;w=60;u="tokens"'
    assert re.fullmatch(r'"requests";r=3;t=1, "tokens";r=59\d\d;t=\d+', headers["ratelimit"])


async def test_generic_headers_and_retry_after(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """Generic mode sends X-RateLimit-* for requests and retry-after on 429."""
    sim = await make_simulator(
        SimulatorConfig(latency=0.0, requests_per_second=1, headers="generic")
    )
    results = await burst(session, f"{sim.base_url}/chat/completions", 2)
    limited = next(h for s, h, _ in results if s == 429)
    assert limited["x-ratelimit-limit"] == "1" and limited["x-ratelimit-remaining"] == "0"
    assert 0 < float(limited["x-ratelimit-reset"]) <= 1.0
    assert 0 < float(limited["retry-after"]) <= 1.0
    assert "retry-after-ms" not in limited


# --- faults ------------------------------------------------------------------------------

CANNED = [
    ("500", 500, "Internal error"),
    ("503", 503, "The model is at capacity"),
    ("grammar", 503, "Grammar is too complex."),
    ("capacity_429", 429, "temporarily at capacity"),
    ("capacity_422", 422, "temporarily at capacity"),
    ("billing", 429, "used all available credits or reached its monthly spending limit"),
    ("bad_key", 400, "Incorrect API key provided: xa***89"),
]


@pytest.mark.parametrize(("kind", "status", "text"), CANNED)
async def test_flat_error_faults(
    make_simulator: SimulatorFactory,
    session: aiohttp.ClientSession,
    kind: str,
    status: int,
    text: str,
) -> None:
    """Each JSON fault sends its status and flat body, then the next request succeeds."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, requests_per_second=1))
    sim.fail_next(kind)
    url = f"{sim.base_url}/chat/completions"
    got_status, _, raw = await call(session, url, chat())
    body = json.loads(raw)
    assert got_status == status and set(body) == {"code", "error"} and text in body["error"]
    assert KEY not in raw.decode()
    # The fault consumed no rate credit: the single request of this second still passes.
    assert (await call(session, url, chat()))[0] == 200
    assert sim.stats.faults == {kind: 1}


async def test_proxy_and_broken_body_faults(
    simulator: Simulator, session: aiohttp.ClientSession
) -> None:
    """HTML 502, empty 500, malformed 200 and a 200 without choices are served as broken."""
    url = f"{simulator.base_url}/chat/completions"
    simulator.fail_next("502_html")
    status, headers, raw = await call(session, url, chat())
    assert status == 502 and headers["content-type"].startswith("text/html")
    assert b"Bad Gateway" in raw
    simulator.fail_next("empty_body_500")
    assert (await call(session, url, chat()))[::2] == (500, b"")
    simulator.fail_next("malformed")
    status, _, raw = await call(session, url, chat())
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(raw)
    simulator.fail_next("no_choices", 2)
    status, _, raw = await call(session, url, chat())
    assert status == 200 and "choices" not in json.loads(raw) and "usage" in json.loads(raw)
    status, _, raw = await call(
        session, f"{simulator.base_url}/responses", {"model": "m", "input": "x"}
    )
    assert status == 200 and "output" not in json.loads(raw)
    assert simulator.stats.accepted == 0


async def test_reset_fault_drops_the_connection(
    simulator: Simulator, session: aiohttp.ClientSession
) -> None:
    """A reset closes the connection without any response."""
    simulator.fail_next("reset")
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(session, f"{simulator.base_url}/chat/completions", chat())
    assert (await call(session, f"{simulator.base_url}/chat/completions", chat()))[0] == 200
    assert simulator.stats.faults == {"reset": 1}


async def test_stop_releases_hung_requests(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """A hang holds the request until stop(), which aborts it promptly."""
    sim = await make_simulator(SimulatorConfig(latency=0.0))
    sim.fail_next("hang")
    pending = asyncio.create_task(call(session, f"{sim.base_url}/chat/completions", chat()))
    for _ in range(400):  # until the server holds the request (bounded)
        if sim.stats.faults.get("hang") == 1:
            break
        await asyncio.sleep(0.005)
    assert sim.stats.in_flight == 1 and not pending.done()
    started = time.monotonic()
    await sim.stop()
    assert time.monotonic() - started < 0.5
    with pytest.raises(aiohttp.ClientConnectionError):
        await pending
    assert sim.stats.in_flight == 0


async def test_short_hang_is_served_late(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """A hang that outlives hang_seconds is then served normally."""
    sim = await make_simulator(SimulatorConfig(latency=0.0, hang_seconds=0.05))
    sim.fail_next("hang")
    status, _, _ = await call(session, f"{sim.base_url}/chat/completions", chat())
    assert status == 200 and sim.stats.accepted == 1


async def test_random_faults_are_seeded(make_simulator: SimulatorFactory) -> None:
    """Fault draws follow the seed: two simulators with the same seed fail the same requests."""
    outcomes = []
    for _ in range(2):
        config = SimulatorConfig(latency=0.0, requests_per_second=None, faults={"503": 0.5})
        sim = await make_simulator(config)
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer k"}) as s:
            url = f"{sim.base_url}/chat/completions"
            outcomes.append([(await call(s, url, chat()))[0] for _ in range(20)])
        assert sim.stats.faults["503"] == outcomes[-1].count(503)
    assert outcomes[0] == outcomes[1] and 0 < outcomes[0].count(503) < 20


def test_unknown_fault_kinds_are_refused() -> None:
    """Configuring or forcing an unknown fault kind is an error, not a silent no-op."""
    with pytest.raises(ValueError):
        Simulator(SimulatorConfig(faults={"teapot": 1.0}))
    with pytest.raises(ValueError):
        Simulator().fail_next("teapot")
    assert "hang" in FAULT_KINDS


def test_latency_grows_per_token_and_jitters_within_bounds() -> None:
    """Latency is base + per-token cost, spread uniformly by the jitter fraction."""
    config = SimulatorConfig(latency=0.1, latency_per_token=0.01, latency_jitter=0.5)
    sim = Simulator(config)
    call_ = ModelCall("m", 5, 10, 10, 25, capped=False, stream=False, topic="t")
    delays = [sim._delay(call_) for _ in range(200)]
    assert all(0.15 <= d <= 0.45 for d in delays)  # 0.3 +- 50 %
    assert max(delays) - min(delays) > 0.2
    config.latency_jitter = 0.0
    assert sim._delay(call_) == pytest.approx(0.3)


# --- stats -------------------------------------------------------------------------------


async def test_in_flight_and_reset_stats(
    make_simulator: SimulatorFactory, session: aiohttp.ClientSession
) -> None:
    """Concurrent requests are counted in flight; reset_stats zeroes the counters."""
    sim = await make_simulator(SimulatorConfig(latency=0.3, requests_per_second=None))
    await burst(session, f"{sim.base_url}/chat/completions", 5)
    assert sim.stats.max_in_flight == 5 and sim.stats.in_flight == 0
    sim.reset_stats()
    assert sim.stats.requests == 0 and sim.stats.accepted_times == []
    assert sim.stats.max_in_flight == 0


# --- CLI ---------------------------------------------------------------------------------


def test_cli_options_build_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulate sub-command turns its options into a SimulatorConfig."""
    import argparse

    parser = argparse.ArgumentParser()
    add_simulate_parser(parser.add_subparsers(dest="command"))
    monkeypatch.setenv("SIM_TEST_KEY", "secret-value-123")
    args = parser.parse_args(
        [
            *("simulate", "--rps", "none", "--tpm", "100000", "--headers", "openai"),
            *("--fault", "503=0.05", "--fault", "hang=0.01", "--api-key-env", "SIM_TEST_KEY"),
            *("--model", "grok-4.3"),
        ]
    )
    config = config_from_args(args)
    assert config.requests_per_second is None and config.tokens_per_minute == 100000
    assert config.faults == {"503": 0.05, "hang": 0.01} and config.headers == "openai"
    assert config.api_key == "secret-value-123" and config.model_names == ("grok-4.3",)
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--fault", "teapot=1"])


def test_module_runs_until_interrupted() -> None:
    """python -m grok_scheduler.simulator prints its URL, serves, and exits 0 on Ctrl-C."""
    command = [sys.executable, "-m", "grok_scheduler.simulator", "--port", "0", "--latency", "0"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.search(r"http://127\.0\.0\.1:\d+/v1", line)
            assert match, line
            request = urllib.request.Request(
                f"{match.group(0)}/chat/completions",
                data=json.dumps(chat()).encode(),
                headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                assert json.loads(response.read())["usage"]["total_tokens"] == 25
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
