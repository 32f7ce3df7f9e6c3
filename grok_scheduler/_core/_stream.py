"""What a caller of ``Scheduler.stream`` holds: chunks as they come, then the final Result.

:class:`ResultStream` is an async iterator and an async context manager over one queued job.
The job waits in the same queue, for the same credit and priority as a submitted one; a worker
streams it (:mod:`._stream_call`) and puts each delta into the job's :class:`StreamState`, from
which the caller reads. Once iteration ends, :attr:`ResultStream.result` holds the same
:class:`Result` ``submit`` would have returned. A failure after the first chunk is raised with
the text received so far on the error's ``partial_text``; ``aclose()`` (or leaving the ``async
with``) takes the job out of the queue or closes its connection, so nothing is left open.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .._errors import SchedulerError
from .._models import Result

__all__ = ["ResultStream", "StreamChunk", "StreamState"]


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One piece of a streamed answer: new answer text and, when the server sends it, reasoning."""

    text: str
    reasoning: str = ""


class _End:
    """Marks the end of a job's chunks: its future holds the Result or the error."""


_END = _End()


class StreamState:
    """The channel between the worker streaming a job and the caller reading it."""

    __slots__ = ("abandoned", "channel", "delivered", "last_cut", "parts", "reader", "silent")

    def __init__(self, *, silent: bool = False) -> None:
        # A submitted job streamed on the wire (stream_on_wire) has no reader: nothing is
        # queued, and a retry stays transparent because nothing was ever delivered.
        self.silent = silent
        self.channel: asyncio.Queue[StreamChunk | _End] = asyncio.Queue()
        self.parts: list[str] = []
        # True once a chunk was handed to the caller: from then on no retry is transparent.
        self.delivered = False
        # True once the caller left: the worker stops reading and settles what was generated.
        self.abandoned = False
        # The task reading the current attempt, cancelled when the caller leaves.
        self.reader: asyncio.Task[object] | None = None
        # The attempt the watchdog last cut: its ticket, when sent, before its first byte.
        self.last_cut: tuple[int, float, bool] | None = None

    def deliver(self, chunk: StreamChunk) -> None:
        """Hand one chunk to the caller."""
        if self.silent:
            return
        self.delivered = True
        self.parts.append(chunk.text)
        self.channel.put_nowait(chunk)

    def end(self) -> None:
        """No more chunks will come (the job's future is resolved or cancelled)."""
        self.channel.put_nowait(_END)

    def pass_frame(self, payload: str) -> None:
        """Every non-error SSE payload as received; only raw pass-through streams keep them."""

    @property
    def text(self) -> str:
        """The answer text handed to the caller so far."""
        return "".join(self.parts)

    def __repr__(self) -> str:
        return (
            f"StreamState(delivered={self.delivered}, characters={sum(map(len, self.parts))}, "
            f"abandoned={self.abandoned})"
        )


class ResultStream:
    """A streamed job: ``async for chunk in stream`` yields :class:`StreamChunk` deltas.

    After the last chunk, :attr:`result` is the job's :class:`Result` (usage, attempts, timings,
    exactly as ``submit`` returns it). Use ``async with scheduler.stream(...) as stream`` (or call
    :meth:`aclose`) so that leaving early closes the connection and settles its tokens.
    """

    __slots__ = ("_future", "_result", "_state")

    def __init__(self, state: StreamState, future: asyncio.Future[Result]) -> None:
        self._state = state
        self._future = future
        self._result: Result | None = None
        future.add_done_callback(lambda _future: state.end())

    @property
    def result(self) -> Result:
        """The final Result; raises until the stream was read to its end."""
        if self._result is None:
            raise SchedulerError("the stream has not ended: read it to its end first")
        return self._result

    @property
    def text(self) -> str:
        """The answer text yielded so far."""
        return self._state.text

    def __aiter__(self) -> ResultStream:
        return self

    async def __anext__(self) -> StreamChunk:
        item = await self._state.channel.get()
        if isinstance(item, StreamChunk):
            return item
        # Put the end back: a second read after the end ends (or raises) again.
        self._state.channel.put_nowait(item)
        if self._future.cancelled():
            raise StopAsyncIteration
        error = self._future.exception()
        if error is not None:
            if isinstance(error, SchedulerError):
                error.partial_text = self._state.text
            raise error
        self._result = self._future.result()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop: a queued job leaves the queue, a running one has its connection closed."""
        state = self._state
        if self._future.done():
            return
        state.abandoned = True
        self._future.cancel()
        if state.reader is not None and not state.reader.done():
            state.reader.cancel()
        # Let the worker settle the call before the caller moves on.
        await asyncio.sleep(0)

    async def __aenter__(self) -> ResultStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"ResultStream(done={self._future.done()}, state={self._state!r})"
