"""A recording of what harvestkit itself sends and receives, saved as one scrubbed HAR file.

    with recording() as trace:          # `--record FILE` on `harvest`
        asyncio.run(work())              # every browser tab opened inside takes part
    trace.save("trace.har")              # secrets replaced by stable placeholders

The recording is carried by a context variable, so the code that opens a tab (or sends a request)
joins it without every function in between passing it on. Sources add themselves with
:meth:`Recording.add_source`: anything with an ``async document()`` that returns a HAR document.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .scrub import Scrubber, scrub_har
from .syncrun import run_sync

__all__ = ["Recording", "current_recording", "recording", "write_private"]

_CURRENT: contextvars.ContextVar[Recording | None] = contextvars.ContextVar("harvestkit_recording", default=None)


class Source(Protocol):
    async def document(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=Source)


class Recording:
    """The sources of one recording; :meth:`save` merges and scrubs their entries."""

    def __init__(self) -> None:
        self._sources: list[Source] = []
        self._named: dict[str, Source] = {}

    def add_source(self, source: Source) -> None:
        self._sources.append(source)

    def source_for(self, name: str, make: Callable[[], S]) -> S:
        """The one source of that name in this recording (made and added on first use)."""
        if name not in self._named:
            self._named[name] = make()
            self.add_source(self._named[name])
        return self._named[name]  # type: ignore[return-value]

    async def document(self, *, scrub: bool = True) -> dict[str, Any]:
        """One HAR document of every source's entries, in time order (scrubbed unless told)."""
        entries: list[dict[str, Any]] = []
        for source in self._sources:
            entries.extend((await source.document())["log"]["entries"])
        entries.sort(key=lambda e: e.get("startedDateTime", ""))
        har = {"log": {"version": "1.2", "creator": {"name": "harvestkit", "version": "1"}, "pages": [],
                       "entries": entries}}
        return scrub_har(har, Scrubber()) if scrub else har

    async def asave(self, path: str | os.PathLike[str], *, scrub: bool = True) -> int:
        """Write the HAR (private, atomically); the number of entries written."""
        har = await self.document(scrub=scrub)
        write_private(Path(path), json.dumps(har, ensure_ascii=False, indent=1))
        return len(har["log"]["entries"])

    def save(self, path: str | os.PathLike[str], *, scrub: bool = True) -> int:
        return run_sync(lambda: self.asave(path, scrub=scrub))


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (a reader never sees half a file), readable by its owner
    only: a recording is scrubbed, but what a user's own HAR holds is theirs."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_recording() -> Recording | None:
    """The recording in progress in this context, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def recording() -> Iterator[Recording]:
    """Record what is sent and received inside the block (see the module's docstring)."""
    trace = Recording()
    token = _CURRENT.set(trace)
    try:
        yield trace
    finally:
        _CURRENT.reset(token)
