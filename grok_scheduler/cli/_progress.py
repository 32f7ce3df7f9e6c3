"""Progress of a bulk run: a live display on a terminal, plain periodic lines otherwise.

The run hands a :class:`ProgressSnapshot` to a reporter on every tick. :class:`LiveProgress`
draws with rich (an optional dependency); :class:`PlainProgress` writes one line every
``interval`` seconds, which is what a log file or CI wants. :func:`format_summary` is the text
printed at the end. Notices (warnings, Ctrl-C) go through the reporter too, so a live display
prints them above itself instead of drawing over them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import IO, Any, Protocol

__all__ = [
    "LiveProgress",
    "PlainProgress",
    "ProgressReporter",
    "ProgressSnapshot",
    "RateMeter",
    "format_duration",
    "format_limit",
    "format_summary",
    "make_reporter",
    "plural",
]


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """Where a bulk run stands (counts cover this run; ``skipped`` were done before)."""

    done: int
    total: int | None
    succeeded: int
    failed: int
    skipped: int
    elapsed: float
    rate: float | None
    """Lines finished per second, over the last few seconds."""
    eta: float | None
    in_flight: int
    queued: int
    retries: int
    rate_limited: int
    requests_per_second: float | None
    """The limiter's current (configured or learned) request limit."""
    tokens_per_minute: float | None
    total_tokens: int
    cost_usd: float
    capacity_429s: int = 0
    """The 429s (counted in ``rate_limited``) that said the service was at capacity."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class RateMeter:
    """Finished lines per second over a sliding window of recent samples."""

    __slots__ = ("_samples", "_window")

    def __init__(self, window: float = 10.0) -> None:
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, now: float, done: int) -> float | None:
        """Record ``done`` at ``now``; return the rate, or None until two samples exist."""
        samples = self._samples
        samples.append((now, done))
        while len(samples) > 2 and now - samples[1][0] >= self._window:
            samples.popleft()
        first_time, first_done = samples[0]
        if now <= first_time:
            return None
        return (done - first_done) / (now - first_time)

    def __repr__(self) -> str:
        return f"RateMeter(window={self._window}, samples={len(self._samples)})"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 call``, ``2 calls`` (``nouns`` for an irregular plural)."""
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"


def eta_seconds(done: int, total: int | None, rate: float | None) -> float | None:
    """Seconds left at ``rate``, or None when unknown."""
    if total is None or rate is None or rate <= 0:
        return None
    return max(0, total - done) / rate


def format_duration(seconds: float | None) -> str:
    """``1h02m03s`` / ``4m05s`` / ``6.2s``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def format_limit(value: float | None, unit: str) -> str:
    """``22.2 rps``, ``400000 tpm``: a learned limit has no meaningful fourth digit."""
    if value is None:
        return f"no {unit} limit"
    if not math.isfinite(value):
        return f"{value} {unit}"
    text = f"{value:.0f}" if value >= 100 else f"{value:.1f}".removesuffix(".0")
    return f"{text} {unit}"


def _429s(total: int, capacity: int) -> str:
    return f"{total} (capacity {capacity})" if capacity else str(total)


def format_line(s: ProgressSnapshot) -> str:
    """One plain progress line."""
    total = f"/{s.total}" if s.total is not None else ""
    percent = f" ({100 * s.done / s.total:.1f}%)" if s.total else ""
    rate = f"{s.rate:.1f}/s" if s.rate is not None else "?/s"
    return (
        f"grok-scheduler: {s.done}{total} done{percent}, {rate}, ok {s.succeeded}, "
        f"failed {s.failed}, skipped {s.skipped}, in flight {s.in_flight}, "
        f"429s {_429s(s.rate_limited, s.capacity_429s)}, "
        f"retries {s.retries}, limits {format_limit(s.requests_per_second, 'rps')} / "
        f"{format_limit(s.tokens_per_minute, 'tpm')}, tokens {s.total_tokens}, "
        f"cost ${s.cost_usd:.4f}, elapsed {format_duration(s.elapsed)}, "
        f"ETA {format_duration(s.eta)}"
    )


class ProgressReporter(Protocol):
    """Shows progress; ``interval`` is how often the run should call :meth:`update`."""

    @property
    def interval(self) -> float: ...

    def start(self) -> None: ...

    def update(self, snapshot: ProgressSnapshot) -> None: ...

    def stop(self, snapshot: ProgressSnapshot | None) -> None: ...

    def notice(self, text: str) -> None: ...


def _write_line(stream: IO[str], text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


class PlainProgress:
    """A plain line to ``stream`` every ``interval`` seconds (for logs and pipes)."""

    __slots__ = ("_interval", "_stream")

    def __init__(self, stream: IO[str], *, interval: float = 10.0) -> None:
        self._stream = stream
        self._interval = interval

    @property
    def interval(self) -> float:
        """Seconds between lines."""
        return self._interval

    def start(self) -> None:
        """Nothing to set up."""

    def update(self, snapshot: ProgressSnapshot) -> None:
        """Write one line."""
        self._stream.write(format_line(snapshot) + "\n")
        self._stream.flush()

    def stop(self, snapshot: ProgressSnapshot | None) -> None:
        """Nothing to tear down (the summary follows)."""

    def notice(self, text: str) -> None:
        """A warning or a notice, on its own line."""
        _write_line(self._stream, text)

    def __repr__(self) -> str:
        return f"PlainProgress(interval={self._interval})"


class SilentProgress:
    """No progress output (``--progress off``); notices still show."""

    __slots__ = ("_stream",)

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    @property
    def interval(self) -> float:
        """Ticks still run (they also drive periodic fsync)."""
        return 1.0

    def start(self) -> None:
        """Nothing."""

    def update(self, snapshot: ProgressSnapshot) -> None:
        """Nothing."""

    def stop(self, snapshot: ProgressSnapshot | None) -> None:
        """Nothing."""

    def notice(self, text: str) -> None:
        """A warning or a notice, on its own line."""
        _write_line(self._stream, text)


class LiveProgress:
    """A live display drawn with rich on a terminal."""

    __slots__ = ("_console", "_live", "_stream")

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console

        self._stream = stream
        self._console = Console(file=stream)
        self._live: Any = None

    @property
    def interval(self) -> float:
        """Redraw four times a second."""
        return 0.25

    def start(self) -> None:
        """Open the live region."""
        from rich.live import Live

        self._live = Live(console=self._console, auto_refresh=False, transient=False)
        self._live.start()

    def update(self, snapshot: ProgressSnapshot) -> None:
        """Redraw."""
        if self._live is not None:
            self._live.update(_render(snapshot), refresh=True)

    def stop(self, snapshot: ProgressSnapshot | None) -> None:
        """Draw the last state and close the live region."""
        if self._live is None:
            return
        if snapshot is not None:
            self._live.update(_render(snapshot), refresh=True)
        self._live.stop()
        self._live = None

    def notice(self, text: str) -> None:
        """Printed above the live region while it runs (a plain write would be drawn over)."""
        if self._live is None:
            _write_line(self._stream, text)
        else:
            self._live.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def __repr__(self) -> str:
        return f"LiveProgress(running={self._live is not None})"


def _render(s: ProgressSnapshot) -> Any:
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    percent = f" ({100 * s.done / s.total:.1f}%)" if s.total else ""
    total = s.total if s.total is not None else "?"
    bar = ProgressBar(total=float(s.total) if s.total else None, completed=s.done, width=40)
    grid.add_row("progress", bar)
    grid.add_row("done", f"{s.done}/{total}{percent}   ETA {format_duration(s.eta)}")
    rate = f"{s.rate:.1f} lines/s" if s.rate is not None else "?"
    grid.add_row("rate", f"{rate}   elapsed {format_duration(s.elapsed)}")
    grid.add_row(
        "results",
        f"[green]ok {s.succeeded}[/]  [red]failed {s.failed}[/]  skipped {s.skipped}",
    )
    grid.add_row(
        "scheduler",
        f"in flight {s.in_flight}  queued {s.queued}  retries {s.retries}  "
        f"429s {_429s(s.rate_limited, s.capacity_429s)}",
    )
    grid.add_row(
        "limits",
        f"{format_limit(s.requests_per_second, 'rps')}  {format_limit(s.tokens_per_minute, 'tpm')}",
    )
    grid.add_row("usage", f"{s.total_tokens} tokens  ${s.cost_usd:.4f}")
    return grid


def make_reporter(mode: str, stream: IO[str], *, interval: float) -> ProgressReporter:
    """``auto``: live on a terminal (when rich is installed), plain lines otherwise."""
    if mode == "off":
        return SilentProgress(stream)
    if mode in {"auto", "live"} and (mode == "live" or _is_terminal(stream)):
        try:
            return LiveProgress(stream)
        except ImportError:
            pass  # rich is optional: fall back to plain lines
    return PlainProgress(stream, interval=interval)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def format_summary(summary: dict[str, Any]) -> str:
    """The human summary printed at the end of a run."""
    capacity = summary.get("rate_limited_capacity", 0)
    lines = [
        f"grok-scheduler: {summary['status']} in {format_duration(summary['elapsed_seconds'])}",
        f"  lines       {summary['lines']} read, {summary['succeeded']} succeeded, "
        f"{summary['failed']} failed ({summary['bad_lines']} bad input lines), "
        f"{summary['skipped']} already done",
        f"  throughput  {summary['lines_per_second']:.1f} lines/s",
        f"  scheduler   {plural(summary['retries'], 'retry', 'retries')}, "
        f"{summary['rate_limited']} rate limited (429)"
        + (f", {capacity} of them for capacity" if capacity else ""),
        f"  limits      {format_limit(summary['requests_per_second'], 'rps')}, "
        f"{format_limit(summary['tokens_per_minute'], 'tpm')}",
        f"  usage       {summary['total_tokens']} tokens, ${summary['cost_usd']:.4f}",
    ]
    causes = summary.get("failed_calls_by_cause") or {}
    if causes:
        kinds = ", ".join(f"{name} {count}" for name, count in sorted(causes.items()))
        lines.append(f"  failed calls {kinds}")
    failures = summary.get("failures_by_type") or {}
    if failures:
        kinds = ", ".join(f"{name} {count}" for name, count in sorted(failures.items()))
        lines.append(f"  failures    {kinds}")
    lines.append(f"  output      {summary['output']}")
    return "\n".join(lines)
