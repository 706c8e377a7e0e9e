"""harvestkit.client: stream chat answers from Cerebras and Cloudflare with harvested sessions.

``async with Client() as client: await client.chat("Hi", provider="cerebras")``, or the seeds'
``from harvestkit.client import Cerebras, Cloudflare, chat`` — see the README for examples.
"""

from .base_transport import HTTPResponse, Request, Transport, WebSocketConnection
from .cerebras import Cerebras, CerebrasSite
from .chat import PROVIDERS, aclose, chat, chat_sync, get_provider, stream
from .client import Client
from .cloudflare import Cloudflare, CloudflareSite
from .errors import (
    AuthError,
    AuthExpired,
    BadRequest,
    ChallengeError,
    ClientError,
    ConnectError,
    HarvestkitError,
    MissingCredentials,
    ModelNotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    StreamBroken,
    StreamTimeout,
    Timeout,
)
from .events import Event, FinishReason, Reasoning, ToolCalls, Usage
from .mock_transport import MockResponse, MockTransport, MockWebSocket
from .options import ChatOptions
from .settings import Settings
from .site import Site
from .stream import ChatResult, ChatStream
from .sync import SyncClient
from .transport import CurlTransport

__all__ = [
    "PROVIDERS",
    "AuthError",
    "AuthExpired",
    "BadRequest",
    "Cerebras",
    "CerebrasSite",
    "ChallengeError",
    "ChatOptions",
    "ChatResult",
    "ChatStream",
    "Client",
    "ClientError",
    "Cloudflare",
    "CloudflareSite",
    "ConnectError",
    "CurlTransport",
    "Event",
    "FinishReason",
    "HTTPResponse",
    "HarvestkitError",
    "Member",
    "MissingCredentials",
    "MockResponse",
    "MockTransport",
    "MockWebSocket",
    "ModelNotFound",
    "PoolExhausted",
    "ProtocolError",
    "RateLimited",
    "Reasoning",
    "Request",
    "ServerError",
    "SessionPool",
    "Settings",
    "Site",
    "StreamBroken",
    "StreamTimeout",
    "SyncClient",
    "Timeout",
    "ToolCalls",
    "Transport",
    "Usage",
    "WebSocketConnection",
    "aclose",
    "chat",
    "chat_sync",
    "get_provider",
    "stream",
]


def __getattr__(name: str) -> object:
    """The pool classes, imported on first use (most programs use none)."""
    if name == "Member":
        from .pool import Member

        return Member
    if name in ("PoolExhausted", "SessionPool"):
        from . import session_pool

        return getattr(session_pool, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
