"""The options of ``run``: its flags, their validation into :class:`RunOptions`, the API key.

The key is read from ``XAI_API_KEY`` only (there is no flag for it), whatever the base URL: a
placeholder sent silently would hide a forgotten key (a local simulator accepts any value, so
``XAI_API_KEY=x`` is enough there). Only ``demo`` passes its own key, to the simulator it starts.
The output and ``--summary-json`` paths are checked for writing before anything is sent.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from .._core._scheduler import DEFAULT_BASE_URL
from ._exit import UsageError
from ._logging import LOG_LEVELS

__all__ = [
    "RunOptions",
    "build_run_parser",
    "check_writable",
    "is_local_url",
    "options_from_args",
    "resolve_api_key",
]

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything ``run`` needs, validated."""

    input: str
    """A path, or ``-`` for standard input."""
    output: Path
    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    model: str = "grok-4"
    requests_per_second: float | None = None
    tokens_per_minute: float | None = None
    concurrency: int | None = None
    window: int | None = None
    overwrite: bool = False
    redis_url: str | None = field(default=None, repr=False)
    metrics_port: int | None = None
    priority_field: str = "priority"
    ordered: bool = False
    summary_json: Path | None = None
    max_attempts: int = 8
    timeout: float | None = None
    progress: str = "auto"
    progress_interval: float = 10.0
    report: Path | None = None
    """Where to write the HTML picture of the run (rewritten every few seconds while it runs)."""
    log_jobs: bool = False
    """Emit per-job debug events (submitted, dispatched, completed): on with --log-level debug."""
    via: str = "online"
    """The road: ``online``, ``batch`` (xAI's Batch API) or ``auto`` (both, by a deadline)."""
    deadline: float | None = None
    """``--via auto``: seconds from the start of the run by which every line should finish."""
    batch_delay: float | None = None
    """``--via auto``: seconds the Batch API is expected to take until the run sees it answer
    (None: the library's default)."""


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def _duration(text: str) -> float:
    """Seconds of ``2h``, ``45m``, ``1h30m``, ``90s`` or ``90``."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise argparse.ArgumentTypeError(f"not a duration (like 2h, 45m, 90s): {text!r}")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError(f"a duration must be positive: {text!r}")
    return total


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return value


def is_local_url(base_url: str) -> bool:
    """True for a base URL on this machine (127.0.0.1, localhost, ::1)."""
    return (urlparse(base_url).hostname or "") in _LOCAL_HOSTS


def resolve_api_key(base_url: str, environ: Mapping[str, str]) -> str:
    """The key from ``XAI_API_KEY``; a usage error when it is not set."""
    key = environ.get("XAI_API_KEY", "").strip()
    if key:
        return key
    hint = (
        " (the local server accepts any value: XAI_API_KEY=local)" if is_local_url(base_url) else ""
    )
    raise UsageError(f"XAI_API_KEY is not set: export your xAI API key in XAI_API_KEY{hint}")


def check_writable(path: Path, what: str) -> None:
    """Open ``path`` for appending now, so a run never pays for answers it cannot write."""
    existed = path.exists()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UsageError(f"cannot write {what} {str(path)!r}: {exc.strerror}") from None
    os.close(fd)
    if not existed:
        path.unlink(missing_ok=True)  # leave no trace of a probe


def options_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> RunOptions:
    """Validate parsed ``run`` arguments (raises :class:`UsageError`)."""
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite contradict each other")
    base_url = args.base_url
    if urlparse(base_url).scheme not in {"http", "https"} or not urlparse(base_url).hostname:
        raise UsageError(f"--base-url must be an http(s) URL, got {base_url!r}")
    if args.input != "-":
        source = Path(args.input)
        if not source.is_file():
            raise UsageError(f"input file not found: {args.input}")
    output = Path(args.output)
    if not output.parent.is_dir():
        raise UsageError(f"the output's directory does not exist: {output.parent}")
    if output.is_dir():
        raise UsageError(f"the output is a directory: {output}")
    if args.input != "-" and output.exists() and output.samefile(args.input):
        raise UsageError("the output must not be the input file")
    summary = Path(args.summary_json) if args.summary_json else None
    if summary is not None and not summary.parent.is_dir():
        raise UsageError(f"the --summary-json directory does not exist: {summary.parent}")
    if summary is not None and summary.is_dir():
        raise UsageError(f"--summary-json is a directory: {summary}")
    report = Path(args.report) if getattr(args, "report", None) else None
    if report is not None:
        _check_report(report)
    if not args.priority_field:
        raise UsageError("--priority-field must not be empty")
    via = getattr(args, "via", "online")
    if via in ("batch", "auto") and args.input == "-":
        raise UsageError(f"--via {via} reads a file (resuming reads it again), not standard input")
    deadline = getattr(args, "deadline", None)
    if (via == "auto") != (deadline is not None):
        raise UsageError("--via auto needs --deadline, and --deadline needs --via auto")
    batch_delay = getattr(args, "batch_delay", None)
    if batch_delay is not None and via != "auto":
        raise UsageError("--batch-delay goes with --via auto")
    api_key = resolve_api_key(base_url, environ)
    check_writable(output, "the output")
    if summary is not None:
        check_writable(summary, "--summary-json")
    if report is not None:
        check_writable(report, "--report")
    return RunOptions(
        input=args.input,
        output=output,
        api_key=api_key,
        base_url=base_url,
        model=args.model,
        requests_per_second=args.rps,
        tokens_per_minute=args.tpm,
        concurrency=args.concurrency,
        window=args.window,
        overwrite=args.overwrite,
        redis_url=args.redis_url,
        metrics_port=args.metrics_port,
        priority_field=args.priority_field,
        ordered=args.ordered,
        summary_json=summary,
        max_attempts=args.max_attempts,
        timeout=args.timeout,
        progress=args.progress,
        progress_interval=args.progress_interval,
        via=via,
        deadline=deadline,
        batch_delay=batch_delay,
        report=report,
    )


def _check_report(report: Path) -> None:
    """A report that could not be drawn is refused before anything is sent."""
    if not report.parent.is_dir():
        raise UsageError(f"the --report directory does not exist: {report.parent}")
    if report.is_dir():
        raise UsageError(f"--report is a directory: {report}")
    if importlib.util.find_spec("plotly") is None:
        raise UsageError("--report needs plotly: pip install 'grok-scheduler[report]'")


_RUN_EPILOG = """\
input lines (JSONL), either shape:
  {"custom_id": "a1", "method": "POST", "url": "/v1/chat/completions",
   "body": {"model": "grok-4", "messages": [{"role": "user", "content": "Hi"}]}}
  {"id": "a2", "prompt": "Hi", "max_tokens": 100, "priority": 1}

output lines (JSONL, batch output shape), one per input line ("id": the server's request id
for the batch shape, the line's own id for the plain shape):
  {"id": ..., "custom_id": "a1", "request_hash": ..., "response": {"status_code": 200,
   "request_id": ..., "body": {...}}, "error": null}
  {"id": "a2", "custom_id": "a2", "request_hash": ..., "response": null,
   "error": {"type": ..., "code": ..., "message": ..., "status_code": ..., "attempts": ...}}
A job never sent (the run stopped first, e.g. on a refused key) has "code": "not_sent",
"status_code": null and attempts 0; the reason is printed once on stderr.

resume: when OUTPUT already has lines, successes are kept and never sent again; failed and
bad lines are removed and redone, so the finished file holds one line per input line. Each
line records its request's fingerprint (request_hash): an id that now names another request
stops the run (exit 2). --ordered writes lines as answers arrive (none is held in memory) and
puts this run's lines in input order at the end. Use --overwrite to start over.

The API key is read from XAI_API_KEY only, also for a local --base-url (any value works
there). Exit status: 0 all succeeded (or nothing to do), 1 some failed, 2 usage error (also:
an output or --summary-json that cannot be written, an input edited since OUTPUT was written),
130 interrupted (Ctrl-C once drains calls in flight, twice stops at once).
"""


def build_run_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``run`` parser with every flag; the caller sets its handler."""
    parser = subparsers.add_parser(
        "run",
        help="run every prompt of a JSONL file and write the results as JSONL",
        description="Run every prompt of a JSONL file through the scheduler, appending one "
        "result line per input line to OUTPUT (resumable).",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("input", metavar="INPUT.jsonl", help="input file of prompts ('-' for standard input)")
    add("--output", "-o", required=True, metavar="OUTPUT.jsonl", help="results file (appended)")
    add("--base-url", default=DEFAULT_BASE_URL, help=f"API base URL (default {DEFAULT_BASE_URL})")
    add("--model", default="grok-4", help="model for lines that name none (default grok-4)")
    add("--rps", type=_positive_float, metavar="N", help="requests per second limit")
    add("--tpm", type=_positive_float, metavar="N", help="tokens per minute limit")
    add(
        "--concurrency",
        type=_positive_int,
        default=None,
        metavar="N",
        help="most calls in flight (default: sized from the learned rate and latency)",
    )
    add("--window", type=_positive_int, metavar="N", help="look-ahead: jobs held at once")
    add("--resume", action="store_true", help="continue OUTPUT (the default when it has lines)")
    add("--overwrite", action="store_true", help="start over: empty OUTPUT first")
    add("--redis-url", metavar="URL", help="share the rate limits through Redis")
    add("--metrics-port", type=_port, metavar="PORT", help="serve Prometheus metrics")
    add(
        "--log-level",
        choices=LOG_LEVELS,
        default="warning",
        help="log level (logs go to stderr; JSON when not a terminal)",
    )
    add(
        "--priority-field",
        default="priority",
        metavar="NAME",
        help="line field holding the priority (lower is more urgent; default 'priority')",
    )
    add("--ordered", action="store_true", help="write this run's results in input order")
    add("--summary-json", metavar="PATH", help="also write the final summary as JSON")
    add(
        "--report",
        metavar="PATH.html",
        help="write a self-contained HTML picture of the run (rates against the learned "
        "limits, 429s, retries), rewritten every few seconds while it runs; needs the "
        "'report' extra",
    )
    add("--max-attempts", type=_positive_int, default=8, metavar="N", help="calls per job")
    add("--timeout", type=_positive_float, metavar="SECONDS", help="timeout of each call")
    add(
        "--progress",
        choices=("auto", "live", "plain", "off"),
        default="auto",
        help="live display on a terminal, plain lines otherwise (default auto)",
    )
    add(
        "--progress-interval",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between plain progress lines (default 10)",
    )
    add(
        "--via",
        choices=("online", "batch", "auto"),
        default="online",
        help="online calls (default), or xAI's Batch API: no rate limit, a reduced price, "
        "answers within 24 hours; resumable from OUTPUT.batch-state; auto: online at the "
        "learned limit, what cannot finish by --deadline through the Batch API",
    )
    add(
        "--deadline",
        type=_duration,
        metavar="DURATION",
        help="with --via auto: finish every line within this long (90s, 45m, 2h, 1h30m)",
    )
    add(
        "--batch-delay",
        type=_duration,
        metavar="DURATION",
        help="with --via auto: how long you expect the Batch API to take (default 1h) until "
        "the run sees its answers; lines must leave for it this long before the deadline",
    )
    return parser
