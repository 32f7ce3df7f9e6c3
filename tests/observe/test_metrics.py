"""Prometheus metrics: the families a scrape shows, served over HTTP from a real scheduler."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiohttp
import pytest
from fakes import TEST_KEY, error, ok

from grok_scheduler import (
    BadRequestError,
    LimiterState,
    MockTransport,
    RateLimitError,
    RetryPolicy,
    Scheduler,
    TransportResponse,
    Usage,
)
from grok_scheduler._observe._metrics import render_metrics, start_metrics_server
from grok_scheduler._observe._stats import ModelStatistics, SchedulerStatistics, StatsRecorder
from grok_scheduler._wire._classify import Verdict

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (KeyError if the scrape lacks it)."""
    return samples[(name, tuple(sorted(labels.items())))]


class StubScheduler:
    """Anything with statistics() (and optionally model) can be exposed."""

    def __init__(self, stats: SchedulerStatistics, model: str | None = "grok-4-fast") -> None:
        self._stats = stats
        if model is not None:
            self.model = model

    def statistics(self) -> SchedulerStatistics:
        return self._stats


def busy_statistics(limiter: LimiterState | None) -> SchedulerStatistics:
    """A snapshot with something in every field."""
    stats = StatsRecorder()
    for priority in (0, 2, 2):
        stats.submitted(priority)
    stats.completed(Usage(100, 20, 30, 40, 150, 25_000_000_000), 0.2, 1.5)
    stats.completed(Usage(10, 2, 0, 0, 12, None), 700.0, 0.05)
    limited = RateLimitError("tokens per minute")
    stats.failed_attempt(Verdict(limited, True, None, "tokens", True))
    stats.failed_attempt(Verdict(limited, True, None, None, True))
    bad = BadRequestError("bad", status_code=400)
    stats.failed_attempt(Verdict(bad, False, None, None, False))
    stats.failed(bad)
    stats.retried()
    return stats.snapshot(
        queued=3,
        in_flight=2,
        limiter=limiter,
        queue_by_priority={0: (1, 4.0), 2: (2, 9.5)},
        breaker_state="open",
        active_alerts=frozenset({"queue_wait"}),
        budget_used_fraction=0.25,
        models={
            "grok-4-fast": ModelStatistics(
                "grok-4-fast", limiter, in_flight=2, concurrency_limit=9, queued=3, slow_latency=1.5
            )
        }
        if limiter is not None
        else None,
    )


def test_every_family_is_exposed_with_its_value() -> None:
    """A scrape shows counters, gauges, labels and limits exactly as the snapshot says."""
    limiter = LimiterState(5.0, 60_000.0, 4.0, 50_000.0, 0.0, "headers")
    samples = parse(render_metrics(StubScheduler(busy_statistics(limiter))).decode())
    total = "grok_scheduler_requests_total"
    assert value(samples, total, model="grok-4-fast", outcome="success") == 2
    assert value(samples, total, model="grok-4-fast", outcome="rate_limited") == 2
    assert value(samples, total, model="grok-4-fast", outcome="client_error") == 1
    assert value(samples, "grok_scheduler_jobs_submitted_total") == 3
    assert value(samples, "grok_scheduler_jobs_completed_total") == 2
    assert value(samples, "grok_scheduler_jobs_failed_total", error_type="BadRequestError") == 1
    assert value(samples, "grok_scheduler_retries_total") == 1
    assert value(samples, "grok_scheduler_rate_limited_total", dimension="tokens") == 1
    assert value(samples, "grok_scheduler_rate_limited_total", dimension="requests") == 0
    assert value(samples, "grok_scheduler_rate_limited_total", dimension="unknown") == 1
    assert value(samples, "grok_scheduler_queue_depth", priority="0") == 1
    assert value(samples, "grok_scheduler_queue_depth", priority="2") == 2
    assert value(samples, "grok_scheduler_queue_oldest_wait_seconds", priority="2") == 9.5
    assert value(samples, "grok_scheduler_in_flight") == 2
    limits = "grok_scheduler_limit_requests_per_second"
    assert value(samples, limits, model="grok-4-fast") == 5.0
    assert value(samples, "grok_scheduler_limit_tokens_per_minute", model="grok-4-fast") == 60_000
    in_flight = "grok_scheduler_model_in_flight"
    assert value(samples, in_flight, model="grok-4-fast", kind="limit") == 9
    assert value(samples, "grok_scheduler_tokens_total", kind="prompt") == 110
    assert value(samples, "grok_scheduler_tokens_total", kind="completion") == 22
    assert value(samples, "grok_scheduler_tokens_total", kind="reasoning") == 30
    assert value(samples, "grok_scheduler_tokens_total", kind="cached") == 40
    assert value(samples, "grok_scheduler_cost_usd_total") == pytest.approx(2.5)
    assert value(samples, "grok_scheduler_circuit_open") == 1
    assert value(samples, "grok_scheduler_alert_firing", kind="queue_wait") == 1
    assert value(samples, "grok_scheduler_alert_firing", kind="error_rate") == 0
    assert value(samples, "grok_scheduler_budget_used_ratio") == 0.25


def test_histograms_are_cumulative_with_sum_and_count() -> None:
    """Queue-wait and call-time histograms follow the Prometheus le/+Inf/_sum/_count shape."""
    samples = parse(render_metrics(StubScheduler(busy_statistics(None))).decode())
    wait = "grok_scheduler_queue_wait_seconds"
    assert value(samples, wait + "_bucket", le="0.1") == 0
    assert value(samples, wait + "_bucket", le="0.25") == 1
    assert value(samples, wait + "_bucket", le="600.0") == 1
    assert value(samples, wait + "_bucket", le="+Inf") == 2
    assert value(samples, wait + "_count") == 2
    assert value(samples, wait + "_sum") == pytest.approx(700.2)
    call = "grok_scheduler_call_seconds"
    assert value(samples, call + "_bucket", le="0.1") == 1
    assert value(samples, call + "_bucket", le="2.0") == 2
    assert value(samples, call + "_sum") == pytest.approx(1.55)


def test_unknown_limits_model_and_budget_are_left_out_or_marked() -> None:
    """No limiter: no limit gauges; no budget: no ratio; no model attribute: model="unknown"."""
    stats = StatsRecorder().snapshot(queued=0, in_flight=0, limiter=None)
    samples = parse(render_metrics(StubScheduler(stats, model=None)).decode())
    names = {name for name, _ in samples}
    assert "grok_scheduler_limit_requests_per_second" not in names
    assert "grok_scheduler_budget_used_ratio" not in names
    assert value(samples, "grok_scheduler_requests_total", model="unknown", outcome="success") == 0
    assert value(samples, "grok_scheduler_circuit_open") == 0


def test_a_clear_error_names_the_extra_when_prometheus_client_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without prometheus-client installed, using metrics says how to install it."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    stats = StatsRecorder().snapshot(queued=0, in_flight=0, limiter=None)
    with pytest.raises(ImportError, match=r"pip install grok-scheduler\[metrics\]"):
        render_metrics(StubScheduler(stats))


async def test_metrics_are_scraped_over_http_from_a_running_scheduler() -> None:
    """A real scheduler runs jobs; an HTTP scrape shows exactly what happened; stop frees it."""
    seen: dict[str, int] = {}

    async def handler(path: str, body: dict[str, Any]) -> TransportResponse:
        prompt = str(body["messages"][-1]["content"])
        seen[prompt] = seen.get(prompt, 0) + 1
        if prompt == "bad":
            return error(400, "Invalid request", code="Client specified an invalid argument")
        if prompt == "flaky" and seen[prompt] == 1:
            return error(503, "Service unavailable", code="Internal error")
        return ok(prompt, prompt_tokens=10, completion_tokens=5)

    scheduler = Scheduler(
        api_key=TEST_KEY,
        model="grok-metrics-test",
        transport=MockTransport(handler),
        retry=RetryPolicy(base_delay=0.0, max_delay=0.0),
        requests_per_second=1000,
        tokens_per_minute=1_000_000,
    )
    async with scheduler:
        server = start_metrics_server(scheduler, 0)
        try:
            prompts = ["one", "two", "flaky", "bad"]
            outcomes = await asyncio.gather(
                *(scheduler.submit(prompt) for prompt in prompts), return_exceptions=True
            )
            assert isinstance(outcomes[3], BadRequestError)
            async with aiohttp.ClientSession() as session, session.get(server.url) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                samples = parse(await response.text())
        finally:
            await asyncio.to_thread(server.stop)
    outcome = {
        labels[1][1]: count
        for (name, labels), count in samples.items()
        if name == "grok_scheduler_requests_total"
    }
    assert outcome == {"success": 3, "server_error": 1, "client_error": 1}
    assert value(samples, "grok_scheduler_jobs_submitted_total") == 4
    assert value(samples, "grok_scheduler_jobs_completed_total") == 3
    assert value(samples, "grok_scheduler_jobs_failed_total", error_type="BadRequestError") == 1
    assert value(samples, "grok_scheduler_retries_total") == 1
    assert value(samples, "grok_scheduler_tokens_total", kind="prompt") == 30
    assert value(samples, "grok_scheduler_cost_usd_total") == pytest.approx(3000 / 1e10)
    assert value(samples, "grok_scheduler_call_seconds_count") == 3
    assert value(samples, "grok_scheduler_in_flight") == 0
    tpm = "grok_scheduler_limit_tokens_per_minute"
    assert value(samples, tpm, model="grok-metrics-test") == pytest.approx(1e6)
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session, session.get(server.url):
            pass


async def test_each_server_has_its_own_registry() -> None:
    """Two endpoints for two schedulers coexist and never touch the global registry."""
    first = StubScheduler(StatsRecorder().snapshot(queued=1, in_flight=0, limiter=None), "a")
    second = StubScheduler(StatsRecorder().snapshot(queued=2, in_flight=0, limiter=None), "b")
    servers = [start_metrics_server(first, 0), start_metrics_server(second, 0)]
    try:
        async with aiohttp.ClientSession() as session:
            for server, model in zip(servers, "ab", strict=True):
                async with session.get(server.url) as response:
                    text = await response.text()
                assert f'model="{model}"' in text
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop)
    assert (
        prometheus_client.REGISTRY.get_sample_value("grok_scheduler_jobs_submitted_total") is None
    )
