"""``run --via auto --deadline``: end to end against the simulator (both roads, each line once)."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from grok_scheduler._batch._client import BatchClient
from grok_scheduler._batch._journal import Journal
from grok_scheduler._batch._road import BatchRoad
from grok_scheduler._transports._rest import AiohttpRest
from grok_scheduler.cli._auto_run import format_auto_summary, run_auto
from grok_scheduler.cli._batch_run import batch_state_path
from grok_scheduler.cli._exit import UsageError
from grok_scheduler.cli._options import RunOptions, build_run_parser, options_from_args
from grok_scheduler.simulator import Simulator, SimulatorConfig
from grok_scheduler.simulator._batches import BatchConfig

LIMITED = SimulatorConfig(latency=0.05, requests_per_second=20)


def _options(tmp_path: Path, base_url: str, n: int, deadline: float) -> RunOptions:
    lines = [json.dumps({"id": f"q{i}", "prompt": f"question {i}"}) for i in range(n)]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    return RunOptions(
        input=str(source),
        output=tmp_path / "out.jsonl",
        api_key="local",
        base_url=base_url,
        model="grok-4.3",
        via="auto",
        deadline=deadline,
        progress="off",
    )


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_auto_sends_the_overflow_by_batch_and_answers_each_line_once(
    tmp_path: Path,
) -> None:
    """160 lines at 20 rps need 8 s online; with 4 s, part goes by batch, none twice."""
    async with Simulator(LIMITED, batch=BatchConfig(processing_delay=0.3)) as sim:
        options = _options(tmp_path, sim.base_url, 160, deadline=4.0)
        report = await run_auto(options, io.StringIO(), poll_min=0.1, poll_max=0.2)
        batch_added = sim.batches.stats.requests_added
        assert sim.batches.stats.duplicates == 0
        online_answered = sim.stats.accepted
    assert report.exit_code == 0, report.summary
    records = _records(options.output)
    assert Counter(r["custom_id"] for r in records) == Counter(f"q{i}" for i in range(160))
    via = Counter(r["via"] for r in records)
    assert via["batch"] == batch_added > 0 and via["online"] == online_answered > 0
    summary = report.summary
    assert summary["online_lines"] + summary["batch_lines"] == 160
    costs = summary["cost_usd"]
    assert costs["online"] > 0 and costs["batch"] > 0
    # Each figure is rounded to 6 decimals: their sum may be off by up to 2e-6.
    assert costs["same_work_online"] == pytest.approx(
        costs["online"] + 2 * costs["batch"], abs=2e-6
    )
    assert "online" in format_auto_summary(summary)


async def test_a_resumed_auto_run_polls_what_the_state_file_holds(tmp_path: Path) -> None:
    """Lines a killed run sent by batch come back by batch and are never sent again."""
    async with Simulator(LIMITED, batch=BatchConfig(processing_delay=0.2)) as sim:
        options = _options(tmp_path, sim.base_url, 40, deadline=60.0)
        # What a killed run left: q0..q9 on the batch road, nothing in the output yet.
        rest = AiohttpRest(base_url=sim.base_url, api_key="local")
        journal = Journal(batch_state_path(options.output))
        body = {"model": "grok-4.3", "messages": [{"role": "user", "content": "x"}]}
        await BatchRoad(BatchClient(rest), journal).submit((f"q{i}", body) for i in range(10))
        journal.close()
        await rest.aclose()
        report = await run_auto(options, io.StringIO(), poll_min=0.05, poll_max=0.1)
        assert sim.batches.stats.requests_added == 10 and sim.batches.stats.duplicates == 0
        assert sim.stats.accepted == 30
        again = await run_auto(options, io.StringIO(), poll_min=0.05, poll_max=0.1)
        assert sim.batches.stats.requests_added == 10 and sim.stats.accepted == 30
    assert report.exit_code == 0 and again.summary["skipped"] == 40
    via = {r["custom_id"]: r["via"] for r in _records(options.output)}
    assert len(via) == 40 and all(via[f"q{i}"] == "batch" for i in range(10))
    assert all(via[f"q{i}"] == "online" for i in range(10, 40))


def test_deadline_goes_with_auto_only(tmp_path: Path) -> None:
    """--via auto without --deadline, or --deadline without auto, is a usage error."""
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    build_run_parser(sub)
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    env = {"XAI_API_KEY": "xai-test"}
    base = ["run", str(source), "-o", str(tmp_path / "o.jsonl")]
    for extra in (["--via", "auto"], ["--deadline", "2h"]):
        with pytest.raises(UsageError):
            options_from_args(parser.parse_args([*base, *extra]), env)
    options = options_from_args(
        parser.parse_args([*base, "--via", "auto", "--deadline", "1h30m"]), env
    )
    assert (options.via, options.deadline) == ("auto", 5400.0)
