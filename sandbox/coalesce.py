"""An HTTP/1.1 connection's transport as aiohttp sees it, able to gather writes as a loaded server's do.

alpn.py hands aiohttp's request handler a `CoalescingTransport` over the TLS transport instead of
the TLS transport itself (the asyncio Transport interface, as h2server.py's `StreamTransport`
does for HTTP/2 streams): nothing of aiohttp's internals is touched. Writes pass straight
through, except inside `coalesced()`: an unpaced agents answer holds it (cloudflare_api.py), so
its WebSocket frames, and those other tasks write meanwhile in the order written, leave in writes
of about 16 KiB (with the `split_writes` knob, the default: random sizes of 1 to 32 KiB, and half
the writes cut in two at a random place, so a frame straddles TLS records and a client's reads),
as stream_http does for HTTP streams. What is gathered goes out at the latest when the writing
task yields to the event loop. Compression (permessage-deflate) happens in aiohttp's writer,
before the bytes get here, so it is unchanged.
"""
from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator
from typing import Any

from .state import SandboxState
from .streaming import COALESCE, varied_write


class CoalescingTransport(asyncio.Transport):
    """A pass-through transport that gathers writes while `coalesced()` holds."""

    def __init__(self, transport: asyncio.Transport, state: SandboxState) -> None:
        super().__init__()
        self._transport, self._state = transport, state
        self._holds = 0
        self._buffer = bytearray()
        self._target = COALESCE
        self._flush_soon: asyncio.Handle | None = None
        self._rng = random.Random()

    @contextlib.contextmanager
    def coalesced(self) -> Iterator[None]:
        """Gather writes while this holds; what is gathered goes out when the last hold ends."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            if not self._holds:
                self.flush()

    def write(self, data: Any) -> None:
        if not self._holds:
            self._transport.write(data)
            return
        self._buffer += data
        if len(self._buffer) >= self._target:
            self.flush()
        elif self._flush_soon is None:
            self._flush_soon = asyncio.get_running_loop().call_soon(self.flush)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def flush(self) -> None:
        """Hand what was gathered to the TLS transport, as one write or two."""
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        if not self._buffer or self._transport.is_closing():
            self._buffer.clear()
            return
        data = bytes(self._buffer)
        self._buffer.clear()
        if self._state.knobs.split_writes:
            self._target, pieces = varied_write(data, self._rng)
        else:
            self._target, pieces = COALESCE, [data]
        for piece in pieces:
            self._transport.write(piece)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self.flush()  # what was written before the abort had reached the TLS transport before
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._buffer)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


def coalesced(transport: asyncio.BaseTransport | None, pace: float) -> contextlib.AbstractContextManager[None]:
    """`transport.coalesced()` for an unpaced stream on a connection that can; else nothing."""
    hold = getattr(transport, "coalesced", None)
    return hold() if hold is not None and pace <= 0 else contextlib.nullcontext()
