"""The VirtualServer on a FakeClock, the worlds helper, parity with the aiohttp simulator, CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from typing import Any

import aiohttp
import pytest
from worlds import World, ideal_makespan, make_world_scheduler

from grok_scheduler import FakeClock
from grok_scheduler.simulator import (
    LimitChange,
    ModelLimits,
    Simulator,
    SimulatorConfig,
    VirtualServer,
)
from grok_scheduler.simulator._cli import add_simulate_parser, config_from_args

START = 1000.0


def chat(model: str = "grok-4.3", text: str = "hello world how are you") -> dict[str, Any]:
    """A chat body of 25 tokens in all."""
    return {"model": model, "messages": [{"role": "user", "content": text}]}


async def test_virtual_server_waits_only_on_its_clock() -> None:
    """An answer with 30 s of latency arrives when the fake clock says so, not before."""
    clock = FakeClock(START)
    server = VirtualServer(SimulatorConfig(latency=30.0), now=clock.now, sleep=clock.sleep)
    task = asyncio.ensure_future(server.handle("chat/completions", chat()))
    await clock.advance(29.9)
    assert not task.done() and server.stats.in_flight == 1
    await clock.advance(0.1)
    status, raw, headers = task.result()
    body = json.loads(raw)
    assert status == 200 and body["usage"]["total_tokens"] == 25
    assert body["created"] == int(START + 30) and headers["x-request-id"] == body["id"]
    assert server.stats.in_flight == 0 and server.stats.tokens == 25


async def test_virtual_faults_tokenize_and_unknown_paths() -> None:
    """Canned faults, a reset as ConnectionResetError, tokenize costing a request, 404 paths."""
    clock = FakeClock(START)
    config = SimulatorConfig(latency=0.0, requests_per_second=1)
    server = VirtualServer(config, now=clock.now, sleep=clock.sleep)
    server.fail_next("billing")
    server.fail_next("reset")
    response = await server.respond("chat/completions", chat())
    assert response.status == 429 and response.fault == "billing" and response.refused is None
    with pytest.raises(ConnectionResetError):
        await server.respond("chat/completions", chat())
    status, raw, _ = await server.handle("tokenize-text", {"model": "grok-4.3", "text": "abcdefgh"})
    assert status == 200 and len(json.loads(raw)["token_ids"]) == 2
    assert (await server.handle("chat/completions", chat()))[0] == 429  # tokenize took the second
    assert (await server.handle("nope", {}))[0] == 404
    assert server.stats.faults == {"billing": 1, "reset": 1}


async def test_stream_answers_as_server_sent_events() -> None:
    """stream=true gives the SSE chunks the aiohttp server writes, ending in [DONE]."""
    clock = FakeClock(START)
    server = VirtualServer(SimulatorConfig(latency=0.0), now=clock.now, sleep=clock.sleep)
    status, raw, headers = await server.handle("chat/completions", chat() | {"stream": True})
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    assert raw.endswith(b"data: [DONE]\n\n")


async def test_apply_config_reshapes_at_once() -> None:
    """Editing the config and applying it clamps every model's buckets immediately."""
    clock = FakeClock(START)
    config = SimulatorConfig(latency=0.0, requests_per_second=10)
    server = VirtualServer(config, now=clock.now, sleep=clock.sleep)
    assert (await server.handle("chat/completions", chat()))[0] == 200
    config.requests_per_second = 2
    server.apply_config()
    statuses = [(await server.handle("chat/completions", chat()))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]


# --- worlds: a scheduler against a world -------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        SimulatorConfig(requests_per_second=5, latency=0.5),
        SimulatorConfig(
            requests_per_second=5,
            latency=1.0,
            latency_dist="lognormal",
            latency_sigma=1.0,
            rate_limit_body="xai",
        ),
    ],
)
@pytest.mark.parametrize("told", [5.0, 10.0])
async def test_scheduler_runs_in_a_world_and_the_world_keeps_score(
    config: SimulatorConfig, told: float
) -> None:
    """Every job finishes; the record gives makespan, ideal and the 429 share."""
    clock = FakeClock(START)
    world = World(config, clock)
    jobs = 40
    async with make_world_scheduler(clock, world, model="grok-4", requests_per_second=told) as s:
        futures = [s.submit_nowait(f"p{i}") for i in range(jobs)]
        await clock.run_until_done(asyncio.gather(*futures), limit=600)
    ok = [sent for sent in world.sent if sent.status == 200]
    assert len(ok) == jobs == world.stats.accepted
    assert all(sent.model == "grok-4" for sent in world.sent)
    ideal = ideal_makespan(config, jobs, model="grok-4")
    assert ideal == pytest.approx((jobs - 5) / 5 + config.latency)
    assert world.makespan >= (jobs - 5) / 5  # no client beats the bucket
    assert world.makespan < 3 * ideal
    if told <= 5:
        assert world.share_429 == 0.0
    else:  # told twice the real limit: the world refuses some, and says so
        assert 0.0 < world.share_429 < 0.5
    assert world.refused("requests") == sum(sent.status == 429 for sent in world.sent)


def test_ideal_makespan_counts_burst_minute_tokens_and_neighbour() -> None:
    """The slowest bucket sets the ideal; a model the team lacks never finishes."""
    config = SimulatorConfig(requests_per_second=10, latency=2.0)
    assert ideal_makespan(config, 10) == 2.0  # all in the initial burst
    assert ideal_makespan(config, 110) == pytest.approx(12.0)
    config.neighbour_share = 0.5
    assert ideal_makespan(config, 110) == pytest.approx(22.0)
    config = SimulatorConfig(
        requests_per_second=None, tokens_per_minute=6000, latency=0.0, requests_per_minute=60
    )
    assert ideal_makespan(config, 120) == pytest.approx(60.0)
    assert ideal_makespan(config, 120, tokens_per_job=200) == pytest.approx(180.0)
    assert ideal_makespan(config, 1, tokens_per_job=6001) == math.inf
    config.model_limits = {"grok-4": ModelLimits.unavailable()}
    assert ideal_makespan(config, 1) == math.inf


# --- parity with the aiohttp simulator -----------------------------------------------------


def _comparable(status: int, raw: bytes, headers: dict[str, str]) -> tuple[Any, ...]:
    body = json.loads(raw)
    for volatile in ("id", "created"):
        body.pop(volatile, None)
    kept = {
        k.lower(): v
        for k, v in headers.items()
        if k.lower().startswith(("x-ratelimit", "ratelimit", "retry-after", "content-type"))
    }
    return status, body, kept


@pytest.mark.parametrize("headers", ["openai-60s", "openai-1s", "ietf", "openai"])
async def test_aiohttp_simulator_serves_what_the_virtual_server_serves(headers: str) -> None:
    """For one config and one frozen clock, both servers answer byte-for-byte alike."""

    def config() -> SimulatorConfig:
        return SimulatorConfig(
            latency=0.0,
            requests_per_second=2,
            tokens_per_minute=6000,
            headers=headers,  # type: ignore[arg-type]
            rate_limit_body="xai",
            model_names=("grok-4.3", "grok-4", "grok-4.5"),
            model_limits={
                "grok-4": ModelLimits(1, 100, 30),
                "grok-4.5": ModelLimits.unavailable(),
            },
            limit_changes=(LimitChange(0.0, 0.5, "grok-4.3"),),
        )

    requests = [chat()] * 3 + [chat("grok-4")] * 2 + [chat("grok-4.5"), chat("grok-9")]
    requests.append(chat("grok-4.3", "x" * 2000))
    clock = FakeClock(START)
    virtual = VirtualServer(config(), now=clock.now, sleep=clock.sleep)
    expected = [_comparable(*(await virtual.handle("chat/completions", r))) for r in requests]
    got = []
    async with (
        Simulator(config(), now=lambda: START) as sim,
        aiohttp.ClientSession(headers={"Authorization": "Bearer k"}) as session,
    ):
        for body in requests:
            url = f"{sim.base_url}/chat/completions"
            async with session.post(url, data=json.dumps(body).encode()) as response:
                raw = await response.read()
                got.append(_comparable(response.status, raw, dict(response.headers)))
    assert got == expected
    assert [status for status, _, _ in got] == [200, 429, 429, 200, 429, 429, 404, 429]


# --- CLI -----------------------------------------------------------------------------------


def test_cli_builds_worlds() -> None:
    """The new options reach the config: model limits, changes, bodies, latency shape."""
    parser = argparse.ArgumentParser()
    add_simulate_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            *("simulate", "--rpm", "600", "--model-limits", "grok-4=5:16000"),
            *("--model-limits", "grok-4.5=0:0", "--model-limits", "grok-3=none:none:60"),
            *("--limit-change", "60:0.5", "--limit-change", "90:2:grok-4"),
            *("--rate-limit-body", "xai", "--rate-limit-dash", "hyphen"),
            *("--no-rate-limit-preamble", "--headers", "openai-day"),
            *("--latency-dist", "lognormal", "--latency-sigma", "1.2", "--latency-max", "90"),
        ]
    )
    config = config_from_args(args)
    assert config.requests_per_minute == 600
    assert config.model_limits == {
        "grok-4": ModelLimits(5, 16000),
        "grok-4.5": ModelLimits(0, 0),
        "grok-3": ModelLimits(None, None, 60),
    }
    assert not config.model_limits["grok-4.5"].available
    assert config.limit_changes == (LimitChange(60, 0.5), LimitChange(90, 2, "grok-4"))
    assert (config.rate_limit_body, config.rate_limit_dash) == ("xai", "-")
    assert config.rate_limit_preamble is False and config.headers == "openai-day"
    assert (config.latency_dist, config.latency_sigma, config.latency_max) == (
        "lognormal",
        1.2,
        90,
    )
    for bad in (
        ["--model-limits", "grok-4=5"],
        ["--model-limits", "grok-4=-1:5"],
        ["--limit-change", "60:0"],
        ["--latency-dist", "pareto"],
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(["simulate", *bad])
