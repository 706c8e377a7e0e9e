"""A plain HTTP/2 client (the h2 library over Python's ssl) through the sandbox's proxy, frame by frame.

It is what a script using an ordinary HTTP/2 stack looks like to the sandbox: no GREASE in its
TLS hello and h2's own SETTINGS, window and pseudo-header order.
"""
from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
from harvestkit.sandbox import Sandbox


@dataclass
class H2Exchange:
    """What came back on one stream (and on the connection after it)."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    frames: list[bytes] = field(default_factory=list)  # DATA payloads, as the frames came
    reset_code: int | None = None
    goaway_code: int | None = None
    ended: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(self.frames)


def open_tls(sandbox: Sandbox, host: str, alpn: tuple[str, ...] = ("h2",), timeout: float = 5.0) -> ssl.SSLSocket:
    """A TLS connection to `host` through the proxy's CONNECT tunnel."""
    raw = socket.create_connection(("127.0.0.1", sandbox.port), timeout=timeout)
    raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    context = ssl.create_default_context(cafile=sandbox.ca_bundle)
    context.set_alpn_protocols(list(alpn))
    return context.wrap_socket(raw, server_hostname=host)


def h2_request(
    sandbox: Sandbox,
    host: str,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    wait_after: float = 0.0,
    timeout: float = 10.0,
) -> H2Exchange:
    """One request on a fresh HTTP/2 connection; with `wait_after`, keep reading the idle connection."""
    conn = open_tls(sandbox, host)
    assert conn.selected_alpn_protocol() == "h2"
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    client.initiate_connection()
    request = [(":method", method), (":authority", host), (":scheme", "https"), (":path", path)]
    request += [(name.lower(), value) for name, value in (headers or {}).items()]
    if body:
        request.append(("content-length", str(len(body))))
    client.send_headers(1, request, end_stream=not body)
    if body:
        client.send_data(1, body, end_stream=True)
    conn.sendall(client.data_to_send())
    result = H2Exchange()
    deadline = time.monotonic() + timeout
    idle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if idle_until is not None and time.monotonic() > idle_until:
                break
            conn.settimeout(max(0.05, min(deadline, idle_until or deadline) - time.monotonic()))
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            if not data:
                break
            for event in client.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    result.headers = {k: v for k, v in event.headers}
                    result.status = int(result.headers[":status"])
                elif isinstance(event, h2.events.DataReceived):
                    result.frames.append(event.data)
                    client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    result.ended = True
                elif isinstance(event, h2.events.StreamReset):
                    result.reset_code = int(event.error_code)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    result.goaway_code = int(event.error_code)
            pending = client.data_to_send()
            if pending:
                conn.sendall(pending)
            if result.goaway_code is not None:
                break
            if (result.ended or result.reset_code is not None) and idle_until is None:
                if not wait_after:
                    break
                idle_until = time.monotonic() + wait_after
    finally:
        conn.close()
    return result
