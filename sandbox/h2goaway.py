"""GOAWAY on the sandbox's HTTP/2 connections: on a connection left idle (the `h2_idle_goaway`
knob), and in the middle of an answer (`Fault.goaway_after`), as a front draining a connection
for a restart does.

A graceful GOAWAY names the highest stream the server took: those streams are served to their
end, a stream the client opens after it is refused (RST_STREAM REFUSED_STREAM, which a client may
retry on a new connection), and the connection closes once no stream is open. An abrupt one
(INTERNAL_ERROR) closes the connection at once, cutting the open streams. The `h2` library allows
no frame after its own GOAWAY, so a graceful one is written as a raw frame beside its state machine.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import h2.errors
from hyperframe.frame import GoAwayFrame

IDLE_TICK = 0.1  # how often an idle connection looks at the `h2_idle_goaway` knob


class Goaway:
    """The GOAWAY half of `H2Connection` (which has `h2`, `streams`, `transport`, `state`,
    `_flush` and `_close`)."""

    h2: Any
    streams: dict[int, Any]
    transport: asyncio.Transport | None
    state: Any
    _idle: asyncio.TimerHandle | None = None
    _idle_since: float = 0.0
    _draining: int | None = None  # the last stream a graceful GOAWAY named
    _flush: Callable[[], None]
    _close: Callable[[], None]

    def goaway(self, graceful: bool) -> None:
        """GOAWAY now: graceful lets the streams taken so far finish, abrupt closes at once."""
        if self.transport is None or self.transport.is_closing():
            return
        last = self.h2.highest_inbound_stream_id
        code = h2.errors.ErrorCodes.NO_ERROR if graceful else h2.errors.ErrorCodes.INTERNAL_ERROR
        self._flush()
        self.transport.write(GoAwayFrame(0, last_stream_id=last, error_code=code).serialize())
        if graceful:
            self._draining = last
            self._close_if_drained()
        else:
            self._close()

    def refused(self, stream_id: int) -> bool:
        """Refuse a stream opened after a graceful GOAWAY (True when it was)."""
        if self._draining is None or stream_id <= self._draining:
            return False
        self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        return True

    def _close_if_drained(self) -> None:
        if self._draining is not None and not self.streams:
            self._flush()
            self._close()

    def _arm_idle(self) -> None:
        """Start timing an idle spell (no open stream); the knob is read as the spell goes on."""
        self._disarm_idle()
        if not self.streams and self.transport is not None:
            self._idle_since = time.monotonic()
            self._idle = asyncio.get_running_loop().call_later(IDLE_TICK, self._idle_tick)

    def _disarm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _idle_tick(self) -> None:
        self._idle = None
        if self.streams or self.transport is None:
            return
        after = self.state.knobs.h2_idle_goaway
        waited = time.monotonic() - self._idle_since
        if after is None or waited < after:
            wait = IDLE_TICK if after is None else min(IDLE_TICK, after - waited)
            self._idle = asyncio.get_running_loop().call_later(max(wait, 0.001), self._idle_tick)
            return
        self.h2.close_connection(
            error_code=h2.errors.ErrorCodes.NO_ERROR, last_stream_id=self.h2.highest_inbound_stream_id
        )
        self._flush()
        self._close()

