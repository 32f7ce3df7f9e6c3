"""Where library events go: nowhere unless the application configured logging, and to stderr
for the command line.

Each library case runs in a fresh interpreter, because what is observed is exactly what an
application that configured nothing (or one thing) would see on its own stdout and stderr:
the state of ``logging`` and structlog in this test process says nothing about that.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from grok_scheduler.simulator import Simulator

# One job fails at once (400) and one is retried once (500, then 200), on virtual time; the
# outcome goes to a file, so the script needs neither stdout nor stderr to report it.
APPLICATION = """
import asyncio, json, random, sys

{setup}

from grok_scheduler import FakeClock, MockTransport, RetryPolicy, Scheduler, TransportResponse

calls = {{"retried": 0}}

def answer(status, message):
    body = json.dumps({{"code": "x", "error": message}}).encode()
    return TransportResponse(status, body, {{}})

async def handler(path, body):
    prompt = body["messages"][-1]["content"]
    if prompt == "bad":
        return answer(400, "Invalid request")
    if prompt == "flaky" and calls["retried"] == 0:
        calls["retried"] += 1
        return answer(500, "Internal error")
    reply = {{"id": "r", "choices": [{{"message": {{"role": "assistant", "content": "ok"}}}}],
              "usage": {{"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}}}
    return TransportResponse(200, json.dumps(reply).encode(), {{}})

async def main():
    clock = FakeClock()
    scheduler = Scheduler(
        api_key="xai-EVENTSTESTKEY0123456789abcdef", clock=clock,
        transport=MockTransport(handler, clock=clock), rng=random.Random(0),
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=3),
    )
    async with scheduler:
        bad = scheduler.submit_nowait("bad")
        flaky = scheduler.submit_nowait("flaky")
        await clock.run_until_done(asyncio.gather(bad, flaky, return_exceptions=True))
    with open(sys.argv[1], "w") as out:
        json.dump({{"failed": type(bad.exception()).__name__,
                   "flaky_attempts": flaky.result().attempts}}, out)

asyncio.run(main())
"""

SETUPS = {
    "nothing": "",
    "logging": "import logging\nlogging.basicConfig(stream=sys.stderr, level=logging.INFO)",
    "structlog": (
        "import structlog\n"
        "structlog.configure(processors=[structlog.processors.add_log_level,"
        " structlog.processors.JSONRenderer()],"
        " logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))"
    ),
}

EVENT_NAMES = ("grok_scheduler.failed", "grok_scheduler.retry_scheduled")


def _environment() -> dict[str, str]:
    # Nothing from the test run may configure the child: no key, no warning filters.
    return {
        key: value
        for key, value in os.environ.items()
        if key not in {"XAI_API_KEY", "PYTHONWARNINGS"} and not key.startswith("PYTEST")
    }


def _run_application(
    setup: str, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    outcome = tmp_path / "outcome.json"
    done = subprocess.run(
        [sys.executable, "-c", APPLICATION.format(setup=SETUPS[setup]), str(outcome)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(outcome.read_text())
    # The events had something to say: one job failed, one was retried.
    assert result == {"failed": "BadRequestError", "flaky_attempts": 2}
    return done, result


def test_an_application_that_configured_nothing_sees_nothing(tmp_path: Path) -> None:
    """With no logging configured, a failed and a retried job print nothing on stdout or stderr."""
    done, _ = _run_application("nothing", tmp_path)
    assert done.stdout == ""
    for name in EVENT_NAMES:
        assert name not in done.stderr
    assert "xai-EVENTSTESTKEY" not in done.stderr


def test_stdlib_logging_receives_the_events(tmp_path: Path) -> None:
    """logging.basicConfig(level=INFO) shows the events on stderr, through the stdlib logger."""
    done, _ = _run_application("logging", tmp_path)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    failed = [line for line in lines if "grok_scheduler.failed" in line]
    assert failed and failed[0].startswith("WARNING:grok_scheduler:grok_scheduler.failed")
    assert "error_type='BadRequestError'" in failed[0]
    assert any(
        line.startswith("INFO:grok_scheduler:grok_scheduler.retry_scheduled") for line in lines
    )
    assert "xai-EVENTSTESTKEY" not in done.stderr


def test_a_structlog_application_receives_the_events_through_structlog(tmp_path: Path) -> None:
    """An application that configured structlog gets the events as structlog events."""
    done, _ = _run_application("structlog", tmp_path)
    assert done.stdout == ""
    events = [json.loads(line) for line in done.stderr.splitlines()]
    by_name = {event["event"]: event for event in events}
    assert by_name["grok_scheduler.failed"]["error_type"] == "BadRequestError"
    assert by_name["grok_scheduler.failed"]["level"] == "warning"
    assert by_name["grok_scheduler.retry_scheduled"]["status_code"] == 500
    assert "xai-EVENTSTESTKEY" not in done.stderr


async def test_the_command_line_at_debug_prints_events_on_stderr(
    simulator: Simulator, tmp_path: Path
) -> None:
    """`grok-scheduler run --log-level debug` writes the events to stderr, none to stdout."""
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f"p{i}", "prompt": f"say {i}"}) + "\n" for i in range(3))
    )
    output = tmp_path / "out.jsonl"
    # A child process, not main() in this loop: the simulator must keep serving meanwhile.
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "grok_scheduler.cli", "run", str(source), "-o", str(output)),
        *("--base-url", simulator.base_url, "--log-level", "debug", "--progress", "plain"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # The local simulator accepts any key, but the command line needs one set.
        env={**_environment(), "XAI_API_KEY": "local-test-key"},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    events = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    names = {event["event"] for event in events}
    assert "grok_scheduler.dispatched" in names, stderr.decode()
    assert all(event["level"] for event in events)
    assert b"grok_scheduler." not in stdout
