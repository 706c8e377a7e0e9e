"""ALPN dispatch: after the TLS handshake, a connection goes to HTTP/2 (h2server.py) or HTTP/1.1
(aiohttp's handler, over a `CoalescingTransport`: coalesce.py)."""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from .coalesce import CoalescingTransport
from .h2server import H2Connection
from .state import SandboxState


class AlpnDispatch(asyncio.Protocol):
    """Stands in until the TLS handshake is done, then hands the connection to h2 or HTTP/1.1."""

    def __init__(self, state: SandboxState, http1_factory: Callable[[], asyncio.Protocol]) -> None:
        self.state, self.http1_factory = state, http1_factory

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        h2 = alpn == "h2"
        protocol = H2Connection(self.state, self.http1_factory) if h2 else self.http1_factory()
        peer = transport.get_extra_info("peername")
        tunnel = self.state.tunnel_by_peer.get(tuple(peer[:2])) if peer else None
        if tunnel is not None:
            tunnel.protocol = "h2" if h2 else "http/1.1"
        assert isinstance(transport, asyncio.Transport)
        transport.set_protocol(protocol)
        protocol.connection_made(transport if h2 else CoalescingTransport(transport, self.state))


def dispatch_factory(state: SandboxState, http1_factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
    """The protocol factory the proxy hands TLS connections to."""
    return lambda: AlpnDispatch(state, http1_factory)
