"""HTTP/2 for the replica hosts: ALPN picks h2 or HTTP/1.1 per TLS connection.

The HTTP/2 side is the `h2` library's state machine (framing, HPACK, flow control, RST_STREAM,
GOAWAY), driven here by one asyncio protocol per connection. Each HTTP/2 stream is served by the
same aiohttp application as an HTTP/1.1 connection: the stream's request is handed to a fresh
aiohttp request handler through an in-memory transport, and the response it writes is read back
with `h11` and sent on as HEADERS and DATA frames. So every route, cookie, fault and log entry
behaves the same on both protocols, and streaming stays streaming (each write becomes DATA frames
as it happens, within the client's flow-control window). A chunked body, the streams' case,
skips h11 after the head: h2data.py decodes it from each write, without a copy.

(alpn.py hands each TLS connection to this or to aiohttp's HTTP/1.1 handler.)

Faults specific to HTTP/2: `reset_stream()` on a stream's transport sends RST_STREAM (the
streaming helpers call it for `Fault.reset_after`), and `goaway()` GOAWAY (for
`Fault.goaway_after`; the `h2_idle_goaway` knob sends one on a connection that has had no open
stream for that many seconds; see h2goaway.py). With the `split_writes` knob
(default on) the DATA frames of each write have random sizes, and a write that fits one frame
is cut in two at a random place two times in three, so frame boundaries fall inside events, as
they do behind a real front (h2data.frame_ends).
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h11

from .h2data import ChunkedBody, chunked_body, frame_ends
from .h2fingerprint import NotHTTP2, parse_preface
from .h2goaway import Goaway
from .state import SandboxState

log = logging.getLogger("harvestkit.sandbox")
HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te"}
PREFACE_LIMIT = 64 * 1024
HIGH_WATER = 256 * 1024  # response bytes waiting for the window before the handler is paused


class StreamTransport(asyncio.Transport):
    """What one HTTP/2 stream's aiohttp request handler writes its HTTP/1.1 response to."""

    def __init__(self, connection: H2Connection, stream_id: int) -> None:
        super().__init__()
        self._connection, self.stream_id = connection, stream_id
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._closing:
            self._connection.response_bytes(self.stream_id, bytes(data))

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._connection.handler_closed(self.stream_id)

    def abort(self) -> None:
        self.close()

    def goaway(self, graceful: bool = True) -> None:
        """GOAWAY on this stream's connection (see h2goaway.py)."""
        self._connection.goaway(graceful)

    def reset_stream(self, code: int = h2.errors.ErrorCodes.INTERNAL_ERROR) -> None:
        """Send RST_STREAM for this stream (the HTTP/2 way to cut one answer short)."""
        self._connection.reset(self.stream_id, code)
        self._closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "h2_stream_id":
            return self.stream_id
        if name == "alpn_protocol":
            return "h2"
        return self._connection.transport.get_extra_info(name, default) if self._connection.transport else default

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self._connection.pending(self.stream_id)

    def pause_reading(self) -> None:  # the request body is complete before the handler starts
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True


@dataclass
class _Stream:
    id: int
    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)
    handler: asyncio.Protocol | None = None
    parser: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))
    pending: bytearray = field(default_factory=bytearray)
    chunked: ChunkedBody | None = None  # the body's decoder, once h11 has read a chunked head
    complete: bool = False  # the response's end was read
    ended: bool = False  # END_STREAM or RST_STREAM went out
    paused: bool = False


class H2Connection(Goaway, asyncio.Protocol):
    """One HTTP/2 connection from a client, its streams served by the aiohttp application."""

    def __init__(self, state: SandboxState, handler_factory: Callable[[], asyncio.Protocol]) -> None:
        self.state, self.handler_factory = state, handler_factory
        self.transport: asyncio.Transport | None = None
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.streams: dict[int, _Stream] = {}
        self._preface: bytearray | None = bytearray()
        self._rng = random.Random()

    # -- connection ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65536,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: 16384,
            },
        )
        self.h2.initiate_connection()
        self._flush()
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        if self._preface is not None:
            self._read_fingerprint(data)
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.info("sandbox h2: protocol error from client: %s", exc)
            self._flush()
            self._close()
            return
        for event in events:
            self._handle(event)
        self._flush()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        for stream in list(self.streams.values()):
            self._drop(stream, exc or ConnectionResetError("connection closed"))
        self.streams.clear()
        self.transport = None

    def pause_writing(self) -> None:
        for stream in self.streams.values():
            if stream.handler is not None and not stream.paused:
                stream.paused = True
                stream.handler.pause_writing()

    def resume_writing(self) -> None:
        for stream in self.streams.values():
            if stream.handler is not None and stream.paused and len(stream.pending) < HIGH_WATER:
                stream.paused = False
                stream.handler.resume_writing()

    def _read_fingerprint(self, data: bytes) -> None:
        assert self._preface is not None
        self._preface += data
        try:
            fingerprint = parse_preface(bytes(self._preface))
        except NotHTTP2:
            fingerprint = None
            self._preface = None
            return
        if fingerprint is None and len(self._preface) < PREFACE_LIMIT:
            return
        self._preface = None
        peer = self.transport.get_extra_info("peername") if self.transport else None
        tunnel = self.state.tunnel_by_peer.get(tuple(peer[:2])) if peer else None
        if tunnel is not None and fingerprint is not None:
            tunnel.h2_fingerprint = fingerprint.akamai
            tunnel.h2_class = fingerprint.client_class
            tunnel.h2_mismatch = fingerprint.mismatch()
            tunnel.h2_header_priority = fingerprint.header_priority

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            if self.refused(event.stream_id):
                return
            self.streams[event.stream_id] = _Stream(event.stream_id, list(event.headers))
            self._disarm_idle()
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.body += event.data
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                self._dispatch(stream)
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                stream.ended = True
                self._drop(stream, ConnectionResetError("stream reset by the client"))
            self._arm_idle()
        elif isinstance(event, h2.events.WindowUpdated):
            targets = self.streams.values() if event.stream_id == 0 else [self.streams.get(event.stream_id)]
            for stream in list(targets):
                if stream is not None:
                    self._send_pending(stream)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._close()

    # -- one stream -----------------------------------------------------------------------------
    def _dispatch(self, stream: _Stream) -> None:
        """Hand the stream's request to a fresh aiohttp request handler, as HTTP/1.1 bytes."""
        pseudo = {name: value for name, value in stream.headers if name.startswith(b":")}
        headers: list[tuple[bytes, bytes]] = [(b"host", pseudo.get(b":authority", b""))]
        cookies = [value for name, value in stream.headers if name == b"cookie"]
        headers += [
            (name, value)
            for name, value in stream.headers
            if not name.startswith(b":") and name not in (b"cookie", b"host", b"content-length")
        ]
        if cookies:  # HTTP/2 may split the Cookie header; HTTP/1.1 wants one (RFC 9113 8.2.3)
            headers.append((b"cookie", b"; ".join(cookies)))
        headers += [(b"content-length", str(len(stream.body)).encode()), (b"connection", b"close")]
        try:
            request = stream.parser.send(
                h11.Request(
                    method=pseudo.get(b":method", b"GET"), target=pseudo.get(b":path", b"/"), headers=headers
                )
            )
            request += stream.parser.send(h11.Data(data=bytes(stream.body))) or b""
            request += stream.parser.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:
            log.info("sandbox h2: refused a malformed request: %s", exc)
            self._respond_plain(stream, 400, b"Bad Request")
            return
        handler = self.handler_factory()
        stream.handler = handler
        handler.connection_made(StreamTransport(self, stream.id))
        handler.data_received(request or b"")

    def response_bytes(self, stream_id: int, data: bytes) -> None:
        """The handler wrote part of its HTTP/1.1 response: send what it holds as frames."""
        stream = self.streams.get(stream_id)
        if stream is None or stream.ended:
            return
        try:
            if stream.chunked is not None:
                body: list[Any] = stream.chunked.feed(data)
                stream.complete = stream.chunked.done
            else:
                body = self._read_response(stream, data)
        except (h11.RemoteProtocolError, ValueError) as exc:
            log.warning("sandbox h2: unreadable response on stream %s: %s", stream_id, exc)
            self.reset(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
            return
        if len(body) == 1 and not stream.pending:
            self._send_pending(stream, body[0])  # the usual case: straight from the write, no copy
        else:
            for piece in body:
                stream.pending += piece
            self._send_pending(stream)
        if len(stream.pending) >= HIGH_WATER and not stream.paused and stream.handler is not None:
            stream.paused = True
            stream.handler.pause_writing()

    def _read_response(self, stream: _Stream, data: bytes) -> list[Any]:
        """The body bytes h11 reads, up to the head when a chunked body follows (`ChunkedBody`)."""
        stream.parser.receive_data(data)
        body: list[Any] = []
        while True:
            event = stream.parser.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return body
            if isinstance(event, h11.Response):
                self._send_headers(stream, event)
                method = next((value for name, value in stream.headers if name == b":method"), b"GET")
                if chunked_body(method, event.status_code, event.headers):
                    stream.chunked = ChunkedBody()
                    body = stream.chunked.feed(stream.parser.trailing_data[0])
                    stream.complete = stream.chunked.done
                    return body
            elif isinstance(event, h11.Data):
                body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                stream.complete = True
                return body

    def _send_headers(self, stream: _Stream, response: h11.Response) -> None:
        headers = [(b":status", str(response.status_code).encode())]
        headers += [(name.lower(), value) for name, value in response.headers if name.lower() not in HOP_BY_HOP]
        self.h2.send_headers(stream.id, headers)

    def _send_pending(self, stream: _Stream, fresh: memoryview | None = None) -> None:
        """Send what the window allows of the stream's buffer, or of `fresh` body bytes (when
        the buffer is empty; what the window holds back of them is buffered)."""
        if stream.ended:
            return
        pending = stream.pending
        data = pending if fresh is None else fresh
        size = max(0, min(self.h2.local_flow_control_window(stream.id), len(data)))
        if size:
            rng = self._rng if self.state.knobs.split_writes else None
            start, send = 0, self.h2.send_data
            with memoryview(data) as view:
                for end in frame_ends(size, self.h2.max_outbound_frame_size, rng):
                    send(stream.id, view[start:end])
                    start = end
        if fresh is not None:
            pending += fresh[size:]
        elif size:
            del pending[:size]
        if stream.complete and not pending:
            self.h2.end_stream(stream.id)
            stream.ended = True
            self._finish(stream)
        self._flush()
        if stream.paused and len(stream.pending) < HIGH_WATER and stream.handler is not None:
            stream.paused = False
            stream.handler.resume_writing()

    def pending(self, stream_id: int) -> int:
        stream = self.streams.get(stream_id)
        return len(stream.pending) if stream else 0

    def handler_closed(self, stream_id: int) -> None:
        """The handler closed its transport: the answer is over, whole or cut short."""
        stream = self.streams.get(stream_id)
        if stream is None or stream.ended:
            return
        if not stream.complete:
            # An HTTP/1.1 server closing mid-body is a cut answer; on HTTP/2 that is a reset stream.
            self.reset(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)

    def reset(self, stream_id: int, code: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.ended:
            return
        try:
            self.h2.reset_stream(stream_id, code)
        except h2.exceptions.StreamClosedError:
            pass
        stream.ended = True
        self._flush()
        self._finish(stream)

    def _finish(self, stream: _Stream) -> None:
        self.streams.pop(stream.id, None)
        if stream.handler is not None:
            asyncio.get_running_loop().call_soon(stream.handler.connection_lost, None)
            stream.handler = None
        self._close_if_drained()
        self._arm_idle()

    def _drop(self, stream: _Stream, exc: BaseException) -> None:
        if stream.handler is not None:
            handler, stream.handler = stream.handler, None
            handler.connection_lost(exc)

    def _respond_plain(self, stream: _Stream, status: int, body: bytes) -> None:
        self.h2.send_headers(stream.id, [(b":status", str(status).encode()), (b"content-length", str(len(body)).encode())])
        self.h2.send_data(stream.id, body, end_stream=True)
        stream.ended = True
        self._finish(stream)
        self._flush()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
