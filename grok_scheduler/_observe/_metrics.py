"""Prometheus metrics, read from :meth:`Scheduler.statistics` at scrape time.

Nothing is counted twice: the scheduler keeps its own cheap counters (:mod:`._stats`) and
:class:`SchedulerCollector` turns one snapshot into Prometheus families when scraped, so the hot
path pays nothing for metrics. ``prometheus-client`` is an optional extra
(``pip install grok-scheduler[metrics]``) and is imported only when metrics are used.

Exposed families (model label = the scheduler's default model)::

    grok_scheduler_requests_total{model,outcome}     counter  calls by outcome (success, ...)
    grok_scheduler_jobs_submitted_total               counter
    grok_scheduler_jobs_completed_total               counter
    grok_scheduler_jobs_failed_total{error_type}      counter  jobs that failed for good
    grok_scheduler_jobs_cancelled_total               counter
    grok_scheduler_retries_total                      counter
    grok_scheduler_rate_limited_total{dimension}      counter  429s: requests, tokens, unknown
    grok_scheduler_queue_depth{priority}              gauge
    grok_scheduler_queue_oldest_wait_seconds{priority} gauge
    grok_scheduler_in_flight                          gauge
    grok_scheduler_limit_requests_per_second{model}   gauge    absent while unlimited
    grok_scheduler_limit_tokens_per_minute            gauge    absent while unlimited
    grok_scheduler_tokens_total{kind}                 counter  prompt, completion, reasoning, cached
    grok_scheduler_cost_usd_total                     counter
    grok_scheduler_queue_wait_seconds                 histogram
    grok_scheduler_call_seconds                       histogram
    grok_scheduler_circuit_open                       gauge    1 while the breaker holds calls back
    grok_scheduler_alert_firing{kind}                 gauge    1 while that alert fires
    grok_scheduler_budget_used_ratio                  gauge    absent without a budget
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import threading
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric

    from ._stats import Histogram, SchedulerStatistics

__all__ = [
    "MetricsServer",
    "SchedulerCollector",
    "metric_families",
    "render_metrics",
    "start_metrics_server",
]

_INSTALL_HINT = (
    "Prometheus metrics need the prometheus-client package: pip install grok-scheduler[metrics]"
)
# A scrape waits at most this long for the event loop to hand over a snapshot.
_READ_TIMEOUT = 10.0
_ALERT_KINDS = ("error_rate", "rate_limited", "queue_wait", "budget")
_PREFIX = "grok_scheduler_"


def _require_prometheus() -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ImportError(_INSTALL_HINT) from None


def _model_of(scheduler: Any) -> str:
    model = getattr(scheduler, "model", None)
    return model if isinstance(model, str) and model else "unknown"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class SchedulerCollector:
    """A Prometheus collector that snapshots ``scheduler.statistics()`` on every scrape.

    Register it with any ``CollectorRegistry``. The HTTP server scrapes from its own thread,
    while the scheduler's counters belong to its event loop: so when ``loop`` (by default the
    loop running when the collector is made) is running in another thread, the snapshot is taken
    on that loop, never read half-updated from the side.
    """

    __slots__ = ("_loop", "_scheduler")

    def __init__(self, scheduler: Any, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        _require_prometheus()
        self._scheduler = scheduler
        self._loop = loop if loop is not None else _running_loop()

    def collect(self) -> Iterator[Metric]:
        """The metric families for the current snapshot."""
        return iter(metric_families(self._read(), _model_of(self._scheduler)))

    def _read(self) -> SchedulerStatistics:
        loop = self._loop
        if loop is None or not loop.is_running() or _running_loop() is loop:
            return self._scheduler.statistics()  # type: ignore[no-any-return]
        future: concurrent.futures.Future[SchedulerStatistics] = concurrent.futures.Future()

        def read() -> None:
            if not future.set_running_or_notify_cancel():
                return  # the scrape gave up waiting
            try:
                future.set_result(self._scheduler.statistics())
            except BaseException as exc:  # handed to the scraping thread, which re-raises it
                future.set_exception(exc)

        loop.call_soon_threadsafe(read)
        try:
            return future.result(timeout=_READ_TIMEOUT)
        finally:
            future.cancel()

    def __repr__(self) -> str:
        return f"SchedulerCollector(model={_model_of(self._scheduler)!r})"


def metric_families(stats: SchedulerStatistics, model: str) -> list[Metric]:
    """Translate one statistics snapshot into Prometheus metric families."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
        return CounterMetricFamily(_PREFIX + name, doc, value=value)

    def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(_PREFIX + name, doc, value=value)

    requests = CounterMetricFamily(
        _PREFIX + "requests",
        "Calls to the API by outcome (success, rate_limited, server_error, timeout, ...).",
        labels=["model", "outcome"],
    )
    for outcome, count in sorted(stats.requests_by_outcome.items()):
        requests.add_metric([model, outcome], count)
    failed = CounterMetricFamily(
        _PREFIX + "jobs_failed",
        "Jobs that failed for good, by error class.",
        labels=["error_type"],
    )
    for error_type, count in sorted(stats.failures_by_type.items()):
        failed.add_metric([error_type], count)
    rate_limited = CounterMetricFamily(
        _PREFIX + "rate_limited",
        "429 rate limits by the limit they hit (requests, tokens, or unknown).",
        labels=["dimension"],
    )
    rate_limited.add_metric(["requests"], stats.rate_limited_requests)
    rate_limited.add_metric(["tokens"], stats.rate_limited_tokens)
    rate_limited.add_metric(["unknown"], stats.rate_limited_unknown)
    tokens = CounterMetricFamily(
        _PREFIX + "tokens",
        "Tokens reported by the API (cached is part of prompt; reasoning is outside completion).",
        labels=["kind"],
    )
    tokens.add_metric(["prompt"], stats.prompt_tokens)
    tokens.add_metric(["completion"], stats.completion_tokens)
    tokens.add_metric(["reasoning"], stats.reasoning_tokens)
    tokens.add_metric(["cached"], stats.cached_tokens)

    families: list[Metric] = [
        requests,
        counter("jobs_submitted", "Jobs submitted.", stats.submitted),
        counter("jobs_completed", "Jobs that succeeded.", stats.completed),
        failed,
        counter("jobs_cancelled", "Jobs cancelled by their caller.", stats.cancelled),
        counter("retries", "Failed attempts scheduled for another try.", stats.retries),
        rate_limited,
        *_queue_families(stats),
        gauge("in_flight", "Calls sent and not yet answered.", stats.in_flight),
        *_limit_families(stats),
        tokens,
        counter("cost_usd", "Cost reported by the API in US dollars.", stats.cost_usd),
        _histogram(
            "queue_wait_seconds",
            "Seconds a completed job waited in the queue.",
            stats.queue_wait_histogram,
        ),
        _histogram("call_seconds", "Seconds per successful call.", stats.call_time_histogram),
        gauge(
            "circuit_open",
            "1 while the circuit breaker holds calls back (open or half-open), else 0.",
            0.0 if stats.breaker_state == "closed" else 1.0,
        ),
        _alert_family(stats),
    ]
    if stats.budget_used_fraction is not None:
        families.append(
            gauge(
                "budget_used_ratio",
                "Used share of the token or cost budget (the larger).",
                stats.budget_used_fraction,
            )
        )
    return families


def _queue_families(stats: SchedulerStatistics) -> list[Metric]:
    from prometheus_client.core import GaugeMetricFamily

    depth = GaugeMetricFamily(
        _PREFIX + "queue_depth",
        "Jobs waiting, by priority (lower is more urgent).",
        labels=["priority"],
    )
    oldest = GaugeMetricFamily(
        _PREFIX + "queue_oldest_wait_seconds",
        "Seconds the longest-waiting job of each priority has waited.",
        labels=["priority"],
    )
    for priority, level in stats.queue_by_priority.items():
        depth.add_metric([str(priority)], level.depth)
        oldest.add_metric([str(priority)], level.oldest_wait)
    return [depth, oldest]


def _limit_families(stats: SchedulerStatistics) -> list[Metric]:
    from prometheus_client.core import GaugeMetricFamily

    # Each model has its own limits (xAI limits per team per model), so each is labelled.
    requests = GaugeMetricFamily(
        _PREFIX + "limit_requests_per_second",
        "The request rate the model's limiter currently allows.",
        labels=["model"],
    )
    tokens = GaugeMetricFamily(
        _PREFIX + "limit_tokens_per_minute",
        "The token rate the model's limiter currently allows.",
        labels=["model"],
    )
    in_flight = GaugeMetricFamily(
        _PREFIX + "model_in_flight",
        "Calls of the model on the wire, and the bound on them (Little's law).",
        labels=["model", "kind"],
    )
    for model, lane in stats.models.items():
        if lane.limiter.requests_per_second is not None:
            requests.add_metric([model], lane.limiter.requests_per_second)
        if lane.limiter.tokens_per_minute is not None:
            tokens.add_metric([model], lane.limiter.tokens_per_minute)
        in_flight.add_metric([model, "in_flight"], lane.in_flight)
        in_flight.add_metric([model, "limit"], lane.concurrency_limit)
    return [requests, tokens, in_flight]


def _histogram(name: str, doc: str, histogram: Histogram) -> Metric:
    from prometheus_client.core import HistogramMetricFamily

    cumulative = histogram.cumulative()
    labels = [repr(float(bound)) for bound in histogram.bounds] + ["+Inf"]
    buckets = [(label, float(count)) for label, count in zip(labels, cumulative, strict=True)]
    return HistogramMetricFamily(_PREFIX + name, doc, buckets=buckets, sum_value=histogram.sum)


def _alert_family(stats: SchedulerStatistics) -> Metric:
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily(
        _PREFIX + "alert_firing", "1 while the alert of this kind is firing.", labels=["kind"]
    )
    for kind in _ALERT_KINDS:
        family.add_metric([kind], 1.0 if kind in stats.active_alerts else 0.0)
    return family


def render_metrics(scheduler: Any) -> bytes:
    """The scheduler's metrics in the Prometheus text format (e.g. for your own endpoint)."""
    _require_prometheus()
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(SchedulerCollector(scheduler))
    return generate_latest(registry)


class MetricsServer:
    """A running ``/metrics`` endpoint; call it (or :meth:`stop`) to shut it down.

    Stopping waits for the server thread (up to about half a second); from async code,
    ``await asyncio.to_thread(server.stop)`` keeps the event loop free meanwhile.
    """

    __slots__ = ("_server", "_thread", "host", "port")

    def __init__(self, server: WSGIServer, thread: threading.Thread, host: str) -> None:
        self._server: WSGIServer | None = server
        self._thread = thread
        self.host = host
        self.port: int = server.server_port
        """The port really bound (useful with ``port=0``)."""

    @property
    def url(self) -> str:
        """Where to scrape."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self._thread.join()

    def __call__(self) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._server is None else "serving"
        return f"MetricsServer(url={self.url!r}, {state})"


def start_metrics_server(scheduler: Any, port: int, *, host: str = "127.0.0.1") -> MetricsServer:
    """Serve the scheduler's metrics over HTTP on ``host:port`` (``port=0``: any free port).

    Uses a private registry (never the global one), so several schedulers can each have their
    own endpoint. Call it from the scheduler's event loop; the returned object stops the server
    when called.
    """
    _require_prometheus()
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(SchedulerCollector(scheduler))
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread, host)
