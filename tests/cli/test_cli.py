"""The command line end to end: `grok-scheduler run` against the real simulator over sockets."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from grok_scheduler.cli import main
from grok_scheduler.simulator import Simulator, SimulatorConfig, SimulatorStats

SECRET = "xai-TESTSECRETKEY0123456789abcdefXYZ"
LOCAL_KEY = "local-simulator-key"
"""Any value does for the simulator; the command line still wants XAI_API_KEY set."""


class SimulatorThread:
    """A simulator serving from its own thread and loop, for code that runs its own loop."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig(requests_per_second=None, latency=0.0)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self.simulator: Simulator | None = None

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with Simulator(self.config) as simulator:
            self.simulator = simulator
            self._ready.set()
            await self._stop.wait()

    @property
    def base_url(self) -> str:
        assert self.simulator is not None
        return self.simulator.base_url

    @property
    def stats(self) -> SimulatorStats:
        assert self.simulator is not None
        return self.simulator.stats

    def reset_stats(self) -> None:
        """Zero the counters on the simulator's loop and wait until that is done."""
        assert self._loop is not None

        async def reset() -> None:
            assert self.simulator is not None
            self.simulator.reset_stats()

        asyncio.run_coroutine_threadsafe(reset(), self._loop).result(5)

    def __enter__(self) -> SimulatorThread:
        self._thread.start()
        assert self._ready.wait(10), "the simulator did not start"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    """A zero-latency, unlimited simulator in a thread."""
    with SimulatorThread() as running:
        yield running


@pytest.fixture(autouse=True)
def _local_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAI_API_KEY", LOCAL_KEY)


def write_jsonl(path: Path, records: list[Any]) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        for record in records:
            out.write(record if isinstance(record, str) else json.dumps(record))
            out.write("\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def plain(n: int, prefix: str = "p") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "prompt": f"tell me about number {i}"} for i in range(n)]


def run(*args: str | Path) -> int:
    return main(["run", *(str(a) for a in args), "--progress", "plain"])


# -- success paths ---------------------------------------------------------------------------
def test_run_plain_and_batch_shapes_exit_0(sim: SimulatorThread, tmp_path: Path) -> None:
    """Both input shapes are answered; each output line has the batch output shape."""
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "plain", "prompt": "hello there"},
            {"id": "msgs", "messages": [{"role": "user", "content": "hi from messages"}]},
            {
                "custom_id": "chat",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "grok-3-mini",
                    "messages": [{"role": "user", "content": "batch chat"}],
                    "max_tokens": 5,
                },
            },
            {
                "custom_id": "resp",
                "method": "POST",
                "url": "/v1/responses",
                "body": {"input": "batch responses", "max_output_tokens": 40},
            },
            {"prompt": "no id at all"},
        ],
    )
    output = tmp_path / "out.jsonl"
    assert (
        run(source, "--output", output, "--base-url", sim.base_url, "--model", "grok-4-fast") == 0
    )
    records = {r["custom_id"]: r for r in read_jsonl(output)}
    assert set(records) == {"plain", "msgs", "chat", "resp", "line-5"}
    for record in records.values():
        assert record["error"] is None
        assert record["response"]["status_code"] == 200
        assert record["id"]
    chat = records["chat"]["response"]["body"]
    assert chat["object"] == "chat.completion"
    assert chat["model"] == "grok-3-mini"  # the line's model wins
    assert chat["usage"]["completion_tokens"] == 5
    assert records["plain"]["response"]["body"]["model"] == "grok-4-fast"  # --model
    resp = records["resp"]["response"]["body"]
    assert resp["object"] == "response"
    assert resp["output"][-1]["content"][0]["text"].endswith("batch responses")


def test_ordered_output_follows_input_order(tmp_path: Path) -> None:
    """--ordered writes results in input order although calls finish out of order."""
    config = SimulatorConfig(requests_per_second=None, latency=0.01, latency_jitter=1.0, seed=5)
    with SimulatorThread(config) as sim:
        source = write_jsonl(tmp_path / "in.jsonl", plain(60))
        output = tmp_path / "out.jsonl"
        code = run(source, "-o", output, "--base-url", sim.base_url, "--ordered", "--window", "16")
    assert code == 0
    assert [r["custom_id"] for r in read_jsonl(output)] == [f"p{i}" for i in range(60)]


def test_summary_json_and_stderr_summary(
    sim: SimulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--summary-json writes the final counts; the summary also goes to stderr."""
    source = write_jsonl(tmp_path / "in.jsonl", plain(12))
    summary_path = tmp_path / "summary.json"
    output = tmp_path / "out.jsonl"
    args = ("--base-url", sim.base_url, "--summary-json", summary_path)
    assert run(source, "-o", output, *args) == 0
    summary = json.loads(summary_path.read_text())
    assert summary["succeeded"] == 12 and summary["failed"] == 0
    assert summary["exit_code"] == 0 and summary["output"] == str(output)
    assert summary["total_tokens"] > 0
    assert "12 succeeded" in capsys.readouterr().err


def test_progress_lines_when_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Off a terminal, a plain progress line goes to stderr every --progress-interval seconds."""
    with SimulatorThread(SimulatorConfig(requests_per_second=None, latency=0.05)) as sim:
        source = write_jsonl(tmp_path / "in.jsonl", plain(40))
        code = main(
            [
                "run",
                str(source),
                "-o",
                str(tmp_path / "out.jsonl"),
                "--base-url",
                sim.base_url,
                "--concurrency",
                "4",
                "--progress-interval",
                "0.1",
            ]
        )
    assert code == 0
    lines = [
        line
        for line in capsys.readouterr().err.splitlines()
        if re.match(r"grok-scheduler: \d+/40 done \(.*\), .*/s, ok \d+, failed 0", line)
    ]
    assert len(lines) >= 3
    assert "limits" in lines[0] and "ETA" in lines[0] and "tokens" in lines[0]


# -- failures and usage errors ---------------------------------------------------------------
def test_bad_lines_are_error_lines_and_exit_1(sim: SimulatorThread, tmp_path: Path) -> None:
    """Bad lines and duplicate ids become error lines with line numbers; the rest still run."""
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "prompt": "fine"},
            "this is not json",
            {"custom_id": "u", "method": "POST", "url": "/v1/embeddings", "body": {}},
            {"id": "m"},
            {"id": "a", "prompt": "same id again"},
            {"id": "z", "prompt": "x", "max_tokens": -3},
            {"id": "b", "prompt": "also fine"},
        ],
    )
    output = tmp_path / "out.jsonl"
    assert run(source, "-o", output, "--base-url", sim.base_url) == 1
    records = read_jsonl(output)
    assert len(records) == 7
    errors = {r["error"]["line"]: r["error"] for r in records if r["error"] is not None}
    assert {line: e["type"] for line, e in errors.items()} == {
        2: "InvalidLineError",
        3: "InvalidLineError",
        4: "InvalidLineError",
        5: "DuplicateCustomIdError",
        6: "InvalidJobError",
    }
    assert errors[3]["code"] == "unknown_url"
    assert {r["custom_id"] for r in records if r["error"] is None} == {"a", "b"}


def test_api_errors_are_recorded_with_status_and_attempts(tmp_path: Path) -> None:
    """A job the API refuses is an error line with its status, body and attempts; exit 1."""
    with SimulatorThread(SimulatorConfig(requests_per_second=None, latency=0.0)) as sim:
        source = write_jsonl(
            tmp_path / "in.jsonl",
            [
                {"id": "ok", "prompt": "hello"},
                {"id": "long", "prompt": "word " * 110_000},  # over the prompt limit: a 400
            ],
        )
        output = tmp_path / "out.jsonl"
        assert run(source, "-o", output, "--base-url", sim.base_url, "--max-attempts", "2") == 1
    records = {r["custom_id"]: r for r in read_jsonl(output)}
    error = records["long"]["error"]
    assert error["type"] == "BadRequestError" and error["status_code"] == 400
    assert error["attempts"] == 1 and error["line"] == 2
    assert records["long"]["response"]["status_code"] == 400
    assert "maximum prompt length" in records["long"]["response"]["body"]["error"]
    assert records["ok"]["error"] is None


@pytest.mark.parametrize(
    "args",
    [
        ["run", "missing.jsonl", "-o", "out.jsonl", "--base-url", "http://127.0.0.1:9/v1"],
        ["run", "in.jsonl", "-o", "out.jsonl"],  # no XAI_API_KEY for the real API
        ["run", "in.jsonl", "-o", "out.jsonl", "--rps", "-1"],
        ["run", "in.jsonl", "-o", "out.jsonl", "--concurrency", "zero"],
        ["run", "in.jsonl", "-o", "out.jsonl", "--resume", "--overwrite"],
        ["run", "in.jsonl", "-o", "no/such/dir/out.jsonl", "--base-url", "http://localhost:9"],
        ["run", "in.jsonl", "-o", "out.jsonl", "--base-url", "ftp://example.com"],
        ["run", "in.jsonl"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad flags, a missing input file or a missing key exit 2 before any call is made."""
    monkeypatch.delenv("XAI_API_KEY")
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", plain(1))
    assert main(args) == 2
    assert not (tmp_path / "out.jsonl").exists()


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """--help prints the usage of run, with every documented flag, and exits 0."""
    assert main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in (
        "--output",
        "--base-url",
        "--model",
        "--rps",
        "--tpm",
        "--concurrency",
        "--resume",
        "--overwrite",
        "--redis-url",
        "--metrics-port",
        "--log-level",
        "--priority-field",
        "--ordered",
        "--summary-json",
        "--max-attempts",
        "--timeout",
    ):
        assert flag in text


def test_redis_url_without_the_shared_limiter_exits_2(
    sim: SimulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--redis-url when grok_scheduler.distributed cannot be imported is a usage error."""
    monkeypatch.setitem(sys.modules, "grok_scheduler.distributed", None)
    source = write_jsonl(tmp_path / "in.jsonl", plain(2))
    args = ("--base-url", sim.base_url, "--redis-url", "redis://127.0.0.1:1/0")
    assert run(source, "-o", tmp_path / "out.jsonl", *args) == 2
    assert sim.stats.requests == 0


def test_metrics_port_without_metrics_module_warns_and_runs(
    sim: SimulatorThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--metrics-port when the metrics module is missing: a warning, and the run goes on."""
    monkeypatch.setitem(sys.modules, "grok_scheduler._observe._metrics", None)
    source = write_jsonl(tmp_path / "in.jsonl", plain(3))
    args = ("--base-url", sim.base_url, "--metrics-port", "9")
    assert run(source, "-o", tmp_path / "out.jsonl", *args) == 0
    assert "warning: metrics are not available" in capsys.readouterr().err


# -- the API key -----------------------------------------------------------------------------
def test_api_key_is_used_but_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The key from XAI_API_KEY authenticates, and appears in no output, log or summary."""
    monkeypatch.setenv("XAI_API_KEY", SECRET)
    config = SimulatorConfig(requests_per_second=None, latency=0.0, api_key=SECRET)
    with SimulatorThread(config) as sim:
        source = write_jsonl(tmp_path / "in.jsonl", plain(5))
        output, summary = tmp_path / "out.jsonl", tmp_path / "s.json"
        args = ("--base-url", sim.base_url, "--log-level", "debug", "--summary-json", summary)
        assert run(source, "-o", output, *args) == 0
        assert sim.stats.auth_failures == 0
    captured = capsys.readouterr()
    for text in (output.read_text(), summary.read_text(), captured.err, captured.out):
        assert SECRET not in text and SECRET[4:] not in text


def test_wrong_key_fails_the_run_without_leaking_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused key stops the run (exit 1, every line an error) and is never written."""
    monkeypatch.setenv("XAI_API_KEY", SECRET)
    config = SimulatorConfig(requests_per_second=None, latency=0.0, api_key="xai-other-key-0000")
    with SimulatorThread(config) as sim:
        source = write_jsonl(tmp_path / "in.jsonl", plain(20))
        output = tmp_path / "out.jsonl"
        assert run(source, "-o", output, "--base-url", sim.base_url, "--concurrency", "2") == 1
        assert sim.stats.requests <= 2  # a bad key stops the run instead of burning the queue
    records = read_jsonl(output)
    assert len(records) == 20
    assert {r["error"]["type"] for r in records} == {"AuthenticationError"}
    captured = capsys.readouterr()
    for text in (output.read_text(), captured.err, captured.out):
        assert SECRET[8:] not in text


def test_local_base_url_without_a_key_is_a_usage_error(
    sim: SimulatorThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No XAI_API_KEY and a local URL: "XAI_API_KEY is not set", exit 2, nothing sent."""
    monkeypatch.delenv("XAI_API_KEY")
    source = write_jsonl(tmp_path / "in.jsonl", plain(2))
    base = sim.base_url.replace("127.0.0.1", "localhost")
    assert run(source, "-o", tmp_path / "out.jsonl", "--base-url", base) == 2
    assert "XAI_API_KEY is not set" in capsys.readouterr().err
    assert sim.stats.requests == 0
    assert not (tmp_path / "out.jsonl").exists()


def test_any_key_runs_against_a_local_server(sim: SimulatorThread, tmp_path: Path) -> None:
    """With XAI_API_KEY set to anything, a local simulator answers every line."""
    source = write_jsonl(tmp_path / "in.jsonl", plain(2))
    base = sim.base_url.replace("127.0.0.1", "localhost")
    assert run(source, "-o", tmp_path / "out.jsonl", "--base-url", base) == 0


# -- subprocess ------------------------------------------------------------------------------
def test_module_entry_point_runs_the_demo(tmp_path: Path) -> None:
    """`python -m grok_scheduler.cli demo` runs sample prompts on the simulator and exits 0."""
    output = tmp_path / "demo.jsonl"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "grok_scheduler.cli", "demo", "--prompts", "40"),
            *("--output", str(output), "--progress", "plain"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob("grok-scheduler-demo-*"))  # no temporary folder left
    records = read_jsonl(output)
    assert len(records) == 40 and all(r["error"] is None for r in records)
    assert "40 succeeded" in done.stderr
    assert str(output) in done.stdout


# -- issue 13 regressions --------------------------------------------------------------------
def test_wrong_key_tells_the_reason_once_and_marks_jobs_never_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused key: the server's reason once on stderr; unsent jobs say "not sent"."""
    monkeypatch.setenv("XAI_API_KEY", SECRET)
    config = SimulatorConfig(requests_per_second=None, latency=0.0, api_key="xai-other-key-0000")
    n = 60
    with SimulatorThread(config) as sim:
        source = write_jsonl(tmp_path / "in.jsonl", plain(n))
        output = tmp_path / "out.jsonl"
        assert run(source, "-o", output, "--base-url", sim.base_url, "--concurrency", "1") == 1
        sent = sim.stats.requests
    err = capsys.readouterr().err
    assert err.count("Incorrect API key provided") == 1, err
    assert len(err.splitlines()) < 20, err  # not one warning per job
    assert SECRET[8:] not in err
    records = read_jsonl(output)
    unsent = [r for r in records if r["error"]["attempts"] == 0]
    assert len(unsent) == n - sent
    for record in unsent:
        assert record["response"] is None and record["error"]["status_code"] is None
        assert record["error"]["message"].startswith("not sent")
    assert "not sent" in err  # the summary counts them apart


def test_plain_shape_keeps_the_users_id(sim: SimulatorThread, tmp_path: Path) -> None:
    """The plain shape's id comes back as given; the server's id is response.request_id."""
    source = write_jsonl(tmp_path / "in.jsonl", plain(3))
    output = tmp_path / "out.jsonl"
    assert run(source, "-o", output, "--base-url", sim.base_url) == 0
    for record in read_jsonl(output):
        assert record["id"] == record["custom_id"]
        assert record["response"]["request_id"] not in (None, record["id"])


@pytest.mark.parametrize("where", ["output", "summary"])
def test_unwritable_output_or_summary_is_a_usage_error_before_sending(
    where: str, sim: SimulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An output or --summary-json that cannot be written: exit 2, nothing sent, no file."""
    source = write_jsonl(tmp_path / "in.jsonl", plain(3))
    output = tmp_path / "out.jsonl"
    args: list[str | Path] = [source, "--base-url", sim.base_url]
    if where == "output":
        # A link into a missing folder: writable-looking, but no file can be created there.
        output = tmp_path / "dangling.jsonl"
        output.symlink_to(tmp_path / "no-such-dir" / "out.jsonl")
    else:
        (tmp_path / "summary.json").mkdir()  # a folder where the summary should go
        args += ["--summary-json", tmp_path / "summary.json"]
    assert run(*args, "-o", output) == 2
    assert sim.stats.requests == 0
    assert "error" in capsys.readouterr().err
    if where == "summary":
        assert not output.exists()


def test_empty_input_exits_0_and_says_so(
    sim: SimulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An input with no jobs: exit 0 and a word on stderr."""
    source = write_jsonl(tmp_path / "in.jsonl", ["", "  "])
    assert run(source, "-o", tmp_path / "out.jsonl", "--base-url", sim.base_url) == 0
    assert f"no jobs in {source}" in capsys.readouterr().err


def test_unknown_flag_prints_the_usage_of_run(capsys: pytest.CaptureFixture[str]) -> None:
    """A flag `run` does not know: exit 2 with run's usage, not the top-level one."""
    assert main(["run", "in.jsonl", "-o", "out.jsonl", "--no-such-flag"]) == 2
    err = capsys.readouterr().err
    assert "usage: grok-scheduler run" in err and "--no-such-flag" in err


def test_capacity_429s_count_as_429s_and_failed_calls_by_cause(tmp_path: Path) -> None:
    """A 429 for capacity is a 429 in the summary (and counted apart); calls by cause."""
    config = SimulatorConfig(requests_per_second=None, latency=0.0, faults={"capacity_429": 1.0})
    with SimulatorThread(config) as sim:
        source = write_jsonl(tmp_path / "in.jsonl", plain(3))
        summary_path = tmp_path / "s.json"
        args = ("--base-url", sim.base_url, "--max-attempts", "2", "--summary-json", summary_path)
        assert run(source, "-o", tmp_path / "out.jsonl", *args) == 1
    summary = json.loads(summary_path.read_text())
    assert summary["rate_limited"] == 6 and summary["rate_limited_capacity"] == 6
    assert summary["failed_calls_by_cause"] == {"rate_limited": 6}
