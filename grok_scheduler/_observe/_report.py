"""The run report: one self-contained HTML file that shows how the run went over time.

Per model, four charts on one time axis: requests per second sent and accepted against the
learned limit, with 429s and retries marked; tokens per minute against the learned limit;
calls in flight; call-time percentiles. Below them, the run's summary table.

The charts are built with plotly (the ``report`` extra). Plotly draws interactive charts
(zoom, hover for exact counts) from plain Python data, and ``include_plotlyjs=True`` inlines
its JavaScript, so the file opens offline with no server and no CDN; it is widely used and
kept up to date. The core never imports it: only writing a report does.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._stats import LatencySummary, SchedulerStatistics
from ._timeline import RETRY_CAUSES, ModelSeries, TimelineSnapshot

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

__all__ = ["MissingExtraError", "render_report", "report_figures", "write_report"]

_INSTALL = "pip install 'grok-scheduler[report]'"
_REJECTED = "#d62728"
_RETRIED = "#ff7f0e"
_LIMIT = "#7f7f7f"


class MissingExtraError(ImportError):
    """Writing a report needs plotly, which the core does not install."""


def _plotly() -> tuple[Any, Any]:
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as exc:
        raise MissingExtraError(f"writing a run report needs plotly: {_INSTALL}") from exc
    return go, make_subplots


def write_report(
    stats: SchedulerStatistics,
    path: str | os.PathLike[str],
    *,
    refresh_seconds: float | None = None,
) -> None:
    """Write the report of ``stats`` to ``path``, replacing it whole.

    The file is written beside ``path`` and renamed over it, so a browser reloading a report
    rewritten during a run never reads half a file.
    """
    text = render_report(stats, refresh_seconds=refresh_seconds)
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)


def render_report(stats: SchedulerStatistics, *, refresh_seconds: float | None = None) -> str:
    """The report of ``stats`` as one HTML page (plotly's JavaScript inlined once)."""
    figures = report_figures(stats)
    charts = [
        # The first chart carries plotly.js; the others reuse it.
        figure.to_html(full_html=False, include_plotlyjs=(i == 0), config={"responsive": True})
        for i, figure in enumerate(figures)
    ]
    if not charts:
        charts = ["<p>No calls were sent, so there is nothing to draw.</p>"]
    refresh = (
        f'<meta http-equiv="refresh" content="{max(1, round(refresh_seconds))}">'
        if refresh_seconds is not None
        else ""
    )
    timeline = stats.timeline
    began = _began(timeline)
    heading = "grok-scheduler run" + (f", started {began}" if began else "")
    return _PAGE.format(
        refresh=refresh,
        title=html.escape(heading),
        state="live: this page reloads itself" if refresh else "final",
        charts="\n".join(charts),
        summary=_summary_table(stats),
    )


def report_figures(stats: SchedulerStatistics) -> list[Figure]:
    """One figure per model that sent anything (what :func:`render_report` draws)."""
    timeline = stats.timeline
    if timeline is None:
        return []
    go, make_subplots = _plotly()
    figures = []
    for model in timeline.models:
        everything = timeline.series(model)
        series = _whole_rows(everything)
        if len(series):
            figure = _model_figure(go, make_subplots, series, timeline)
            figure.update_layout(title=_headline(everything))
            figures.append(figure)
    return figures


def _headline(series: ModelSeries) -> str:
    """The model's totals over the whole run (the second still being counted included)."""
    rejected = sum(series.total(f"rate_limited_{d}") for d in ("requests", "tokens", "unknown"))
    retries = sum(series.total(f"retries_{cause}") for cause in RETRY_CAUSES)
    return (
        f"{series.model}: {series.total('sent'):.0f} sent, {series.total('accepted'):.0f} "
        f"accepted, {rejected:.0f} 429s, {retries:.0f} retries"
    )


def _whole_rows(series: ModelSeries) -> ModelSeries:
    """Without a last row still being counted: a rate over a few ms of it would be noise."""
    if len(series) < 2 or series.widths[-1] >= series.widths[-2]:
        return series
    return ModelSeries(
        series.model,
        series.starts[:-1],
        series.widths[:-1],
        {name: values[:-1] for name, values in series.columns.items()},
    )


def _times(series: ModelSeries, timeline: TimelineSnapshot) -> list[Any]:
    wall = timeline.wall_started_at
    if wall is None:
        return list(series.starts)
    return [datetime.fromtimestamp(wall + start, tz=UTC) for start in series.starts]


def _model_figure(
    go: Any, make_subplots: Any, series: ModelSeries, timeline: TimelineSnapshot
) -> Any:
    # Each row's value holds until the next row; one more point at the end of the last row
    # keeps its step visible.
    end = series.starts[-1] + series.widths[-1]
    x = _times(series, timeline) + _times(ModelSeries(series.model, (end,), (0.0,), {}), timeline)
    cols = series.columns
    sent = series.per_second("sent")
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        row_heights=[0.34, 0.26, 0.18, 0.22],
        subplot_titles=(
            "requests per second",
            "tokens per minute",
            "calls in flight (peak)",
            "call time, seconds",
        ),
    )
    step = {"shape": "hv"}

    def line(row: int, y: Sequence[float | None], name: str, **style: Any) -> None:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[*y, y[-1]],
                name=name,
                mode="lines",
                line=style.pop("line", step),
                **style,
            ),
            row=row,
            col=1,
        )

    line(1, sent, "sent/s", legendgroup="requests")
    line(1, series.per_second("accepted"), "accepted/s", legendgroup="requests")
    line(
        1,
        _limits(cols["requests_per_second_limit"]),
        "limit (requests/s)",
        line={"shape": "hv", "dash": "dash", "color": _LIMIT},
    )
    rejected = [
        cols["rate_limited_requests"][i]
        + cols["rate_limited_tokens"][i]
        + cols["rate_limited_unknown"][i]
        for i in range(len(series))
    ]
    _marks(go, fig, x, sent, rejected, "429s", _REJECTED, "x")
    retries = [sum(cols[f"retries_{c}"][i] for c in RETRY_CAUSES) for i in range(len(series))]
    _marks(go, fig, x, sent, retries, "retries", _RETRIED, "triangle-up")
    tokens = [60.0 * v for v in series.per_second("tokens")]
    line(2, tokens, "tokens/min")
    line(
        2,
        _limits(cols["tokens_per_minute_limit"]),
        "limit (tokens/min)",
        line={"shape": "hv", "dash": "dash", "color": _LIMIT},
    )
    line(3, cols["in_flight_peak"], "in flight")
    for q, name in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
        fig.add_trace(
            go.Scatter(
                x=x[:-1],
                y=list(series.call_time_percentile(q)),
                name=f"call time {name}",
                mode="lines+markers",
                marker={"size": 3},
                connectgaps=False,
            ),
            row=4,
            col=1,
        )
    fig.update_layout(
        height=900,
        hovermode="x unified",
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 80, "b": 40},
    )
    fig.update_yaxes(rangemode="tozero")
    return fig


def _marks(
    go: Any,
    fig: Any,
    x: list[Any],
    at: Sequence[float],
    counts: Sequence[float],
    name: str,
    color: str,
    symbol: str,
) -> None:
    """Markers on the sent line where ``counts`` is non-zero; the hover tells how many."""
    rows = [i for i, count in enumerate(counts) if count > 0]
    fig.add_trace(
        go.Scatter(
            x=[x[i] for i in rows],
            y=[at[i] for i in rows],
            customdata=[counts[i] for i in rows],
            name=name,
            mode="markers",
            marker={"color": color, "symbol": symbol, "size": 9},
            hovertemplate=f"%{{customdata:.0f}} {name}<extra></extra>",
        ),
        row=1,
        col=1,
    )


def _limits(values: Sequence[float]) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values]


def _began(timeline: TimelineSnapshot | None) -> str:
    if timeline is None or timeline.wall_started_at is None:
        return ""
    return datetime.fromtimestamp(timeline.wall_started_at, tz=UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC"
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g} s"


def _latency(summary: LatencySummary) -> str:
    return " / ".join(_seconds(v) for v in (summary.p50, summary.p90, summary.p99, summary.max))


def _rate(value: float | None, unit: str) -> str:
    return "not known" if value is None else f"{value:,.4g} {unit}"


def _summary_table(stats: SchedulerStatistics) -> str:
    failures = ", ".join(
        f"{name} {count}" for name, count in sorted(stats.failures_by_type.items())
    )
    rows: list[tuple[str, str]] = [
        ("elapsed", _seconds(stats.timeline.now if stats.timeline else None)),
        ("jobs submitted", f"{stats.submitted:,}"),
        ("completed", f"{stats.completed:,}"),
        ("failed", f"{stats.failed:,}" + (f" ({failures})" if failures else "")),
        ("cancelled", f"{stats.cancelled:,}"),
        ("calls sent", f"{stats.dispatched:,}"),
        ("retries", f"{stats.retries:,}"),
        (
            "429 rate limits",
            f"{stats.rate_limited:,} (requests {stats.rate_limited_requests:,}, tokens "
            f"{stats.rate_limited_tokens:,}, not named {stats.rate_limited_unknown:,})",
        ),
        (
            "tokens",
            f"{stats.total_tokens:,} (prompt {stats.prompt_tokens:,}, completion "
            f"{stats.completion_tokens:,}, reasoning {stats.reasoning_tokens:,}, cached "
            f"{stats.cached_tokens:,})",
        ),
        ("cost", f"${stats.cost_usd:,.4f}"),
        ("call time p50 / p90 / p99 / max", _latency(stats.call_time)),
        ("queue wait p50 / p90 / p99 / max", _latency(stats.queue_wait)),
        ("queued now / in flight now", f"{stats.queued:,} / {stats.in_flight:,}"),
    ]
    for model, lane in sorted(stats.models.items()):
        rows.append(
            (
                f"{model}: limits now",
                f"{_rate(lane.limiter.requests_per_second, 'requests/s')}, "
                f"{_rate(lane.limiter.tokens_per_minute, 'tokens/min')}; "
                f"in flight {lane.in_flight} of {lane.concurrency_limit}",
            )
        )
    body = "\n".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in rows
    )
    return f'<table class="summary">\n{body}\n</table>'


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{refresh}
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 1.3em; margin-bottom: 0.2em; }}
.state {{ color: #666; margin-top: 0; }}
table.summary {{ border-collapse: collapse; margin-top: 1em; }}
table.summary th {{ text-align: left; font-weight: 600; padding: 0.2em 1.2em 0.2em 0; }}
table.summary td {{ padding: 0.2em 0; font-variant-numeric: tabular-nums; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="state">{state}</p>
{charts}
<h2>Summary</h2>
{summary}
</body>
</html>
"""
