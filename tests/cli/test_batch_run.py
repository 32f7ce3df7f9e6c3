"""``run --via batch``: same shapes, chunked submission, resume after SIGKILL, cancellation."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from grok_scheduler._batch._client import BatchClient
from grok_scheduler._batch._journal import Journal
from grok_scheduler._batch._road import BatchRoad
from grok_scheduler._transports._rest import AiohttpRest
from grok_scheduler.cli import main
from grok_scheduler.cli._batch_run import batch_state_path, run_batch
from grok_scheduler.cli._options import RunOptions
from grok_scheduler.simulator import Simulator, SimulatorConfig
from grok_scheduler.simulator._batches import BatchConfig

CONFIG = SimulatorConfig(latency=0.0, requests_per_second=None)


class BatchSimulator:
    """A simulator with the Batch API in its own thread (for subprocesses and ``main``)."""

    def __init__(self, batch: BatchConfig) -> None:
        self._batch = batch
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.simulator: Simulator | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with Simulator(CONFIG, batch=self._batch) as sim:
            self.simulator = sim
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Simulator:
        self._thread.start()
        assert self._ready.wait(10)
        assert self.simulator is not None
        return self.simulator

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def _input(path: Path, n: int) -> Path:
    lines = [json.dumps({"id": f"q{i}", "prompt": f"question {i}"}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _options(tmp_path: Path, base_url: str, n: int) -> RunOptions:
    return RunOptions(
        input=str(_input(tmp_path / "in.jsonl", n)),
        output=tmp_path / "out.jsonl",
        api_key="local",
        base_url=base_url,
        model="grok-4.3",
        via="batch",
        progress="off",
    )


def _ids(path: Path) -> Counter[str]:
    return Counter(json.loads(line)["custom_id"] for line in path.read_text().splitlines())


async def test_a_batch_run_writes_every_line_once_marked_as_batch(tmp_path: Path) -> None:
    """Every line is answered once through the batch road, in the online output shape."""
    async with Simulator(CONFIG, batch=BatchConfig(processing_delay=0.2)) as sim:
        options = _options(tmp_path, sim.base_url, 250)
        report = await run_batch(options, poll_min=0.05, poll_max=0.1, chunk_bytes=4000)
        assert sim.batches.stats.add_calls > 1  # chunked
        assert sim.batches.stats.requests_added == 250
    assert report.exit_code == 0
    records = [json.loads(x) for x in options.output.read_text().splitlines()]
    assert len(records) == 250 and {r["via"] for r in records} == {"batch"}
    first = records[0]
    assert first["id"] == first["custom_id"] and first["error"] is None
    assert first["response"]["body"]["object"] == "chat.completion"
    assert report.summary["cost_usd"]["same_work_online"] > report.summary["cost_usd"]["batch"]


async def test_failed_batch_requests_are_failure_lines(tmp_path: Path) -> None:
    """A request the batch could not answer is a failure line, and the run exits 1."""
    async with Simulator(CONFIG, batch=BatchConfig(failure_rate=1.0)) as sim:
        options = _options(tmp_path, sim.base_url, 3)
        report = await run_batch(options, poll_min=0.01, poll_max=0.01)
    assert report.exit_code == 1
    records = [json.loads(x) for x in options.output.read_text().splitlines()]
    assert all(r["error"] is not None and r["via"] == "batch" for r in records)


async def test_an_unconfirmed_chunk_is_settled_by_num_requests(tmp_path: Path) -> None:
    """A chunk journaled as 'adding' is resent only when the batch does not hold it."""
    async with Simulator(CONFIG) as sim:
        rest = AiohttpRest(base_url=sim.base_url, api_key="k")
        journal = Journal(tmp_path / "state")
        road = BatchRoad(BatchClient(rest), journal, poll_min=0.01)
        body = {"model": "grok-4.3", "messages": [{"role": "user", "content": "x"}]}
        await road.submit([("a", body)])
        # A kill after the server took chunk "b" but before "added" was written:
        batch_id = journal.batches[0]
        expect = journal.adding(batch_id, ["b"])
        assert await road._client.add(batch_id, _chunk("b", body))
        journal.close()
        resumed = Journal(tmp_path / "state")
        road2 = BatchRoad(BatchClient(rest), resumed, poll_min=0.01)
        await road2.resume()
        assert resumed.submitted("b") and resumed.count(batch_id) == expect
        assert await road2.submit([("a", body), ("b", body), ("c", body)]) == 1
        assert sim.batches.stats.duplicates == 0
        await rest.aclose()


def _chunk(custom_id: str, body: dict[str, Any]) -> bytes:
    entry = {"batch_request_id": custom_id, "batch_request": {"chat_get_completion": body}}
    return json.dumps({"batch_requests": [entry]}).encode()


async def test_cancelling_a_run_cancels_its_batch(tmp_path: Path) -> None:
    """A run cancelled while it waits for results cancels the remote batch."""
    async with Simulator(CONFIG, batch=BatchConfig(processing_delay=3600)) as sim:
        rest = AiohttpRest(base_url=sim.base_url, api_key="k")
        road = BatchRoad(BatchClient(rest), Journal(None), poll_min=0.01)
        body = {"model": "grok-4.3", "messages": [{"role": "user", "content": "x"}]}
        await road.submit([("a", body)])

        async def wait_for_results() -> None:
            async for _ in road.results():
                pass

        task = asyncio.create_task(wait_for_results())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await road.cancel()
        assert sim.batches.stats.cancelled_batches == 1
        await rest.aclose()


_CHILD = """
import anyio, sys
from pathlib import Path
from grok_scheduler.cli._batch_run import run_batch
from grok_scheduler.cli._options import RunOptions
opts = RunOptions(input=sys.argv[1], output=Path(sys.argv[2]), api_key="local",
                  base_url=sys.argv[3], model="grok-4.3", via="batch", progress="off")
anyio.run(lambda: run_batch(opts, poll_min=0.02, poll_max=0.05, chunk_bytes=3000))
"""


def _child(options: RunOptions) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, options.input, str(options.output), options.base_url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_when(child: subprocess.Popen[bytes], ready: Any) -> None:
    give_up = time.monotonic() + 30
    while not ready():
        assert child.poll() is None, "the run ended before the kill point"
        assert time.monotonic() < give_up, "the kill point never came"
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait(10)


def _records(path: Path, kind: str) -> int:
    if not path.exists():
        return 0
    return sum(kind in line for line in path.read_text().splitlines())


@pytest.mark.parametrize("phase", ["submission", "polling"])
def test_sigkill_then_resume_answers_every_id_exactly_once(tmp_path: Path, phase: str) -> None:
    """Killed mid-submission or mid-polling, the resumed run sends and writes each id once."""
    n = 300
    batch = BatchConfig(processing_delay=0.5, add_latency=0.05)
    with BatchSimulator(batch) as sim:
        options = _options(tmp_path, sim.base_url, n)
        state = batch_state_path(options.output)
        child = _child(options)
        if phase == "submission":
            _kill_when(child, lambda: _records(state, '"added"') >= 3)
        else:
            _kill_when(child, lambda: 0 < _records(options.output, "custom_id") < n)
        if phase == "submission":
            assert sim.batches.stats.requests_added < n  # the kill cut the submission short
        resumed = _child(options)
        assert resumed.wait(60) == 0
        stats = sim.batches.stats
        assert stats.requests_added == n and stats.duplicates == 0
    ids = _ids(options.output)
    assert set(ids) == {f"q{i}" for i in range(n)} and set(ids.values()) == {1}


def test_the_command_line_takes_via_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``grok-scheduler run IN -o OUT --via batch`` runs and says so in the summary."""
    monkeypatch.setenv("XAI_API_KEY", "local")
    with BatchSimulator(BatchConfig()) as sim:
        source = _input(tmp_path / "in.jsonl", 5)
        out = tmp_path / "out.jsonl"
        summary = tmp_path / "summary.json"
        argv = ["run", str(source), "-o", str(out), "--base-url", sim.base_url]
        argv += ["--model", "grok-4.3", "--via", "batch", "--summary-json", str(summary)]
        assert main(argv) == 0
    assert json.loads(summary.read_text())["via"] == "batch"
    assert len(_ids(out)) == 5
