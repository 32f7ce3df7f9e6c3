"""Raw streamed calls: an SDK's ``stream: true`` body scheduled, its SSE frames passed through.

The transport and the gateway hand over what an SDK built with ``stream: true``. The job waits
in the same queue for the same credit as any other and is streamed by the same worker path as
``Scheduler.stream`` (retries before the first frame, the hang watchdog, settling). What the
caller gets differs: every SSE payload exactly as the server sent it (tool-call deltas, ids,
usage chunks), so the SDK parses its own stream. :meth:`RawStream.start` waits for the first
frame; if the job ends before one (a 429 after the retries, a 400), it returns the server's
last answer instead, which the SDK maps to its usual exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from .._errors import SchedulerError
from .._models import Result
from .._transports._base import TransportResponse
from .._transports._streaming import StreamingTransport
from ._intake import make_job
from ._job import Job
from ._raw import last_response, raw_arguments
from ._stream import StreamChunk, StreamState

if TYPE_CHECKING:
    from ._scheduler import Scheduler

__all__ = ["RawStream", "RawStreamState", "send_raw_stream"]


class RawStreamState(StreamState):
    """A stream's channel that carries the server's frames rather than text deltas."""

    __slots__ = ("frames",)

    def __init__(self) -> None:
        super().__init__()
        # None marks the end: the job's future then holds its Result or error.
        self.frames: asyncio.Queue[str | None] = asyncio.Queue()

    def deliver(self, chunk: StreamChunk) -> None:
        """Keep the text (for ``partial_text`` and settling); the frames carry what is sent."""
        self.parts.append(chunk.text)

    def pass_frame(self, payload: str) -> None:
        """Hand one frame over; from now on the attempt cannot be retried transparently."""
        self.delivered = True
        self.frames.put_nowait(payload)

    def end(self) -> None:
        """No more frames will come."""
        self.frames.put_nowait(None)


class RawStream:
    """One raw streamed call: :meth:`start`, then :meth:`frames`; :meth:`aclose` always."""

    __slots__ = ("_first", "_future", "_job", "_state")

    def __init__(self, job: Job, state: RawStreamState, future: asyncio.Future[Result]) -> None:
        self._job = job
        self._state = state
        self._future = future
        self._first: str | None = None
        future.add_done_callback(lambda _future: state.end())

    async def start(self) -> TransportResponse | None:
        """None once the first frame came (read :meth:`frames`); else the server's last answer.

        Raises the job's typed error when it ended with no answer at all (see ``send_raw``).
        """
        first = await self._state.frames.get()
        if first is not None:
            self._first = first
            return None
        self._state.frames.put_nowait(None)
        return await last_response(self._job, self._future)

    async def started(self) -> TransportResponse | None:
        """:meth:`start`, and the job leaves the queue if the caller is cancelled meanwhile."""
        try:
            return await self.start()
        except asyncio.CancelledError:
            self.cancel()
            raise

    async def frames(self) -> AsyncIterator[str]:
        """The SSE payloads after :meth:`start`; a failure mid-stream is raised, typed."""
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        while (frame := await self._state.frames.get()) is not None:
            yield frame
        self._state.frames.put_nowait(None)
        if self._future.cancelled():
            return
        error = self._future.exception()
        if error is not None:
            if isinstance(error, SchedulerError):
                error.partial_text = self._state.text
            raise error

    def cancel(self) -> None:
        """Leave at once: a queued job leaves the queue, a running one has its connection closed."""
        state = self._state
        if self._future.done():
            return
        state.abandoned = True
        self._future.cancel()
        if state.reader is not None and not state.reader.done():
            state.reader.cancel()

    async def aclose(self) -> None:
        """:meth:`cancel`, then let the worker settle the call before the caller moves on."""
        if self._future.done():
            return
        self.cancel()
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"RawStream(done={self._future.done()}, state={self._state!r})"


def send_raw_stream(
    scheduler: Scheduler,
    path: str,
    body: Mapping[str, Any],
    *,
    priority: int | None = None,
    timeout: float | None = None,
    deadline: float | None = None,
) -> RawStream:
    """Queue a raw streamed call (``body`` is sent unchanged, ``stream: true`` in it).

    A function of the engine rather than a ``Scheduler`` method: it reads the scheduler's parts
    as ``send_raw`` does, so the two stay one road.
    """
    if not isinstance(scheduler._transport, StreamingTransport):
        raise SchedulerError(f"{type(scheduler._transport).__name__} cannot stream")
    scheduler._check_open()
    args = raw_arguments(
        scheduler._settings, path, body, priority=priority, timeout=timeout, deadline=deadline
    )
    state = RawStreamState()
    job = make_job(scheduler._lanes, args, None, now=scheduler._clock.now(), stream=state)
    job.raw_body = dict(body)
    return RawStream(job, state, scheduler._enqueue(job))
