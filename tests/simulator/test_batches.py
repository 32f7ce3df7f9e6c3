"""The simulated Batch API: shapes, processing delay, pagination, cancel and xAI's refusals."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from grok_scheduler.simulator import Simulator, SimulatorConfig
from grok_scheduler.simulator._batches import BatchBook, BatchConfig
from grok_scheduler.simulator._world import World

CONFIG = SimulatorConfig(latency=0.0, requests_per_second=None)


def _entry(custom_id: str, model: str = "grok-4.3") -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": f"hi {custom_id}"}]}
    return {"batch_request_id": custom_id, "batch_request": {"chat_get_completion": body}}


def _add(book: BatchBook, world: World, batch_id: str, ids: list[str], now: float) -> int:
    payload = {"batch_requests": [_entry(i) for i in ids]}
    reply = book.add(batch_id, len(json.dumps(payload)), payload, world, now)
    return reply.status


def _created(book: BatchBook, world: World, now: float) -> str:
    reply = book.create({"name": "t"}, world, now)
    assert reply.status == 200
    batch_id = json.loads(reply.body)["batch_id"]
    assert isinstance(batch_id, str)
    return batch_id


def _state(book: BatchBook, batch_id: str, now: float) -> dict[str, int]:
    state = json.loads(book.status(batch_id, now).body)["state"]
    assert isinstance(state, dict)
    return state


def test_a_second_creation_within_a_second_is_refused() -> None:
    """xAI allows 1 batch creation per second per team: the simulator answers 429."""
    book, world = BatchBook(), World(CONFIG, now=0.0)
    _created(book, world, 10.0)
    assert book.create({"name": "u"}, world, 10.5).status == 429
    assert book.stats.refused == {"creation_rate": 1}
    _created(book, world, 11.0)


def test_an_add_payload_over_25_mb_is_refused() -> None:
    """Each add-requests call carries at most 25 MB."""
    book, world = BatchBook(), World(CONFIG, now=0.0)
    batch_id = _created(book, world, 0.0)
    payload = {"batch_requests": [_entry("a")]}
    assert book.add(batch_id, 25 * 1024 * 1024 + 1, payload, world, 0.0).status == 413
    assert _state(book, batch_id, 0.0)["num_requests"] == 0


def test_more_than_100_add_calls_in_30_seconds_are_refused() -> None:
    """The add-requests limit is rolling: the 101st call within 30 s gets 429."""
    book, world = BatchBook(), World(CONFIG, now=0.0)
    batch_id = _created(book, world, 0.0)
    for n in range(100):
        assert _add(book, world, batch_id, [f"r{n}"], n * 0.1) == 200
    assert _add(book, world, batch_id, ["late"], 10.0) == 429
    assert _add(book, world, batch_id, ["later"], 30.0) == 200


def test_results_appear_after_the_processing_delay_with_counts() -> None:
    """Requests stay pending for the delay; then status counts and results show them."""
    book, world = BatchBook(BatchConfig(processing_delay=60.0)), World(CONFIG, now=0.0)
    batch_id = _created(book, world, 0.0)
    _add(book, world, batch_id, ["a", "b"], 0.0)
    assert _state(book, batch_id, 59.0)["num_pending"] == 2
    assert json.loads(book.results(batch_id, None, None, 59.0).body)["results"] == []
    state = _state(book, batch_id, 60.0)
    assert (state["num_pending"], state["num_success"], state["num_requests"]) == (0, 2, 2)
    page = json.loads(book.results(batch_id, None, None, 60.0).body)
    first = page["results"][0]
    assert first["batch_request_id"] == "a"
    completion = first["batch_result"]["response"]["chat_get_completion"]
    assert completion["object"] == "chat.completion"


def test_results_are_paginated_100_at_a_time() -> None:
    """250 results take three pages joined by pagination_token; the last has none."""
    book, world = BatchBook(), World(CONFIG, now=0.0)
    batch_id = _created(book, world, 0.0)
    _add(book, world, batch_id, [f"r{n}" for n in range(250)], 0.0)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = json.loads(book.results(batch_id, token, None, 1.0).body)
        pages += 1
        seen += [r["batch_request_id"] for r in page["results"]]
        token = page["pagination_token"]
        if token is None:
            break
    assert pages == 3
    assert seen == [f"r{n}" for n in range(250)]


def test_per_request_failures_and_invalid_bodies_fail_their_request_only() -> None:
    """A failure rate of 1 fails every request; a body without messages fails just its own."""
    book, world = BatchBook(BatchConfig(failure_rate=1.0)), World(CONFIG, now=0.0)
    batch_id = _created(book, world, 0.0)
    _add(book, world, batch_id, ["a"], 0.0)
    assert _state(book, batch_id, 0.0)["num_error"] == 1
    result = json.loads(book.results(batch_id, None, None, 0.0).body)["results"][0]
    assert "error" in result["batch_result"]
    book2 = BatchBook()
    batch2 = _created(book2, world, 0.0)
    bad = _entry("bad")
    del bad["batch_request"]["chat_get_completion"]["messages"]
    payload = {"batch_requests": [_entry("ok"), bad]}
    book2.add(batch2, 100, payload, world, 0.0)
    state = _state(book2, batch2, 0.0)
    assert (state["num_success"], state["num_error"]) == (1, 1)


def test_cancel_cancels_what_is_still_pending() -> None:
    """Cancelling keeps the answered requests and cancels the pending ones."""
    book, world = BatchBook(BatchConfig(processing_delay=10.0)), World(CONFIG, now=0.0)
    batch_id = _created(book, world, 0.0)
    _add(book, world, batch_id, ["early"], 0.0)
    _add(book, world, batch_id, ["late"], 5.0)
    book.cancel(batch_id, 12.0)
    state = _state(book, batch_id, 100.0)
    assert (state["num_success"], state["num_cancelled"], state["num_pending"]) == (1, 1, 0)
    assert book.stats.cancelled_batches == 1


async def test_the_http_routes_round_trip() -> None:
    """Upload, create from the file, add, status, results and cancel over HTTP."""
    async with (
        Simulator(CONFIG) as sim,
        aiohttp.ClientSession(headers={"Authorization": "Bearer k"}) as http,
    ):
        url = sim.base_url
        line = {"custom_id": "f1", "method": "POST", "url": "/v1/chat/completions"}
        line["body"] = _entry("f1")["batch_request"]["chat_get_completion"]
        form = aiohttp.FormData()
        form.add_field("file", json.dumps(line).encode(), filename="in.jsonl")
        async with http.post(f"{url}/files", data=form) as r:
            file_id = (await r.json())["id"]
        async with http.post(f"{url}/batches", json={"input_file_id": file_id}) as r:
            batch_id = (await r.json())["batch_id"]
        sim.batches._last_creation = None  # the test is not about the creation rate
        async with http.post(
            f"{url}/batches/{batch_id}/requests", json={"batch_requests": [_entry("n1")]}
        ) as r:
            assert r.status == 200
        async with http.get(f"{url}/batches/{batch_id}") as r:
            assert (await r.json())["state"]["num_requests"] == 2
        async with http.get(f"{url}/batches/{batch_id}/results") as r:
            ids = [x["batch_request_id"] for x in (await r.json())["results"]]
        assert ids == ["f1", "n1"]
        async with http.post(f"{url}/batches/{batch_id}:cancel") as r:
            assert r.status == 200
        async with http.get(f"{url}/batches/nope") as r:
            assert r.status == 404
