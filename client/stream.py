"""The one stream type: an async iterator of events and an async context manager.

Leaving a ``ChatStream`` early (``break``, an exception, ``aclose()``) closes the underlying
HTTP transfer or WebSocket at once. What went by is kept: ``text``, ``reasoning``, ``usage``,
``finish_reason`` and ``tool_calls``; ``collect()`` reads the rest into a :class:`ChatResult`.

The stream is the one keeper of the answer's text: a :class:`StreamBroken` that ends it gets
``text`` (what the caller received) from here, whichever layer raised it.
"""

from __future__ import annotations

import operator
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from itertools import groupby
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from .errors import StreamBroken
from .events import Event, FinishReason, Reasoning, ToolCalls, Usage

__all__ = ["ChatResult", "ChatStream"]

_END = object()  # __anext__: the batch is handed out


@dataclass
class ChatResult:
    """A whole answer."""

    text: str
    provider: str
    model: str
    reasoning: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


class ChatStream:
    """``async with provider.stream(...) as stream: async for event in stream: ...``

    ``async for``, :meth:`__anext__` and :meth:`batches` share one position: an iterator over
    the batch being handed out. What the caller has received (``text``, ``usage``...) is
    worked out from the batches when it is asked for, so handing out an event costs one step
    of a list iterator and nothing else."""

    def __init__(self, batches: AsyncGenerator[list[Event], None], *, provider: str, model: str) -> None:
        self._events = batches  # the events in batches (one per network read or frame)
        self._batch: list[Event] = []  # the batch being handed out
        self._rest: Iterator[Event] = iter(self._batch)  # what of it is still to hand out
        self._kept = 0  # how many of _batch the fields below already account for
        self._unkept: list[list[Event]] = []  # earlier batches they do not account for yet
        self.provider = provider
        self.model = model
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._usage: Usage | None = None
        self._finish_reason: str | None = None
        self._tool_calls: list[dict[str, Any]] = []
        self.first_event_at: float | None = None  # time.monotonic() when the first event came
        self.error: BaseException | None = None  # what ended the stream early, if anything
        self.closed = False

    @property
    def text(self) -> str:
        """The answer text received so far."""
        self._keep()
        return "".join(self._text)

    @property
    def reasoning(self) -> str:
        """The reasoning text received so far."""
        self._keep()
        return "".join(self._reasoning)

    @property
    def usage(self) -> Usage | None:
        """The token counts, once received."""
        self._keep()
        return self._usage

    @property
    def finish_reason(self) -> str | None:
        """Why the answer ended, once received."""
        self._keep()
        return self._finish_reason

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """The tool calls received so far."""
        self._keep()
        return self._tool_calls

    def __aiter__(self) -> AsyncIterator[Event]:
        # what ``async for`` walks: one C-level generator resumed per event, not a coroutine
        return self._walk()

    async def _walk(self) -> AsyncGenerator[Event, None]:
        while True:
            for event in self._rest:  # most events: no network read, no bookkeeping
                yield event
            if not await self._load():
                return

    async def batches(self) -> AsyncGenerator[list[Event], None]:
        """The rest of the events a batch at a time (what one network read or frame gave), for
        a consumer that passes them on in bulk; ``async for`` and this share one position."""
        while True:
            rest = list(self._rest)
            if rest:
                yield rest
            elif not await self._load():
                return

    async def __anext__(self) -> Event:
        """The next event; ``async for`` and this share one position in the stream."""
        while (event := next(self._rest, _END)) is _END:
            if not await self._load():
                raise StopAsyncIteration
        return event

    async def asend(self, value: object) -> Event:
        """The next event (the value is ignored): the stream is an async generator too, the
        seeds' return type of ``create_async_generator``."""
        return await self.__anext__()

    async def athrow(self, error: BaseException | type[BaseException], value: object = None, tb: TracebackType | None = None) -> Event:
        """Close the stream, then raise ``error`` (an async generator's ``athrow``)."""
        await self.aclose()
        if isinstance(error, type):
            error = error() if value is None else value if isinstance(value, error) else error(value)
        raise error.with_traceback(tb) if tb is not None else error

    async def _load(self) -> bool:
        """Read the next non-empty batch; False at the end. An error closes the stream first."""
        if self.closed:
            return False
        try:
            batch: list[Event] = []
            while not batch:
                batch = await self._events.__anext__()
        except StopAsyncIteration:
            await self.aclose()
            return False
        except BaseException as error:
            if isinstance(error, StreamBroken):
                error.text = self.text
            self.error = error
            await self.aclose()
            raise
        if self.first_event_at is None:
            self.first_event_at = time.monotonic()
        if self._kept < len(self._batch):  # handed out in full: accounted for when asked
            self._unkept.append(self._batch[self._kept :] if self._kept else self._batch)
        self._batch, self._rest, self._kept = batch, iter(batch), 0
        return True

    def _keep(self) -> None:
        """Bring the fields up to date with every event handed out."""
        for batch in self._unkept:
            self._record(batch)
        self._unkept.clear()
        handed = self._handed()
        if handed > self._kept:
            self._record(self._batch[self._kept : handed])
            self._kept = handed

    def _handed(self) -> int:
        """How many events of the batch being handed out went out."""
        return len(self._batch) - operator.length_hint(self._rest)

    def _record(self, events: list[Event]) -> None:
        for kind, run in groupby(events, type):  # a long run of text in one call
            if kind is str:
                self._text.extend(run)
                continue
            for event in run:
                if isinstance(event, str):
                    self._text.append(event)
                elif isinstance(event, Reasoning):
                    self._reasoning.append(event.text)
                elif isinstance(event, Usage):
                    self._usage = event
                elif isinstance(event, FinishReason):
                    self._finish_reason = event.reason
                elif isinstance(event, ToolCalls):
                    self._tool_calls.extend(event.calls)

    async def text_stream(self) -> AsyncIterator[str]:
        """Only the answer's text chunks."""
        async for event in self:
            if isinstance(event, str):
                yield event

    async def collect(self) -> ChatResult:
        """Read the stream to its end; the whole answer."""
        async for _ in self:
            pass
        return self.result()

    def result(self) -> ChatResult:
        """What was received so far, as a :class:`ChatResult`."""
        return ChatResult(
            text=self.text,
            provider=self.provider,
            model=self.model,
            reasoning=self.reasoning,
            usage=self.usage,
            finish_reason=self.finish_reason,
            tool_calls=list(self.tool_calls),
        )

    async def aclose(self) -> None:
        """Stop the stream and release its connection (idempotent)."""
        if not self.closed:
            self.closed = True
            handed = self._handed()
            deque(self._rest, maxlen=0)  # an ``async for`` inside which this ran stops here
            if handed < len(self._batch):  # the record keeps only what was handed out
                self._batch = self._batch[:handed]
            await self._events.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
