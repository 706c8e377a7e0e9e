"""harvestkit.client: stream chat answers from Cerebras and Cloudflare with harvested sessions.

``from harvestkit.client import Cerebras, Cloudflare, chat`` — see the README for examples.
"""

from .cerebras import Cerebras
from .chat import PROVIDERS, aclose, chat, chat_sync, get_provider, stream
from .cloudflare import Cloudflare
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
from .settings import Settings
from .stream import ChatResult, ChatStream

__all__ = [
    "PROVIDERS",
    "AuthError",
    "AuthExpired",
    "BadRequest",
    "Cerebras",
    "ChallengeError",
    "ChatResult",
    "ChatStream",
    "ClientError",
    "Cloudflare",
    "ConnectError",
    "Event",
    "FinishReason",
    "HarvestkitError",
    "MissingCredentials",
    "ModelNotFound",
    "ProtocolError",
    "RateLimited",
    "Reasoning",
    "ServerError",
    "Settings",
    "StreamBroken",
    "StreamTimeout",
    "Timeout",
    "ToolCalls",
    "Usage",
    "aclose",
    "chat",
    "chat_sync",
    "get_provider",
    "stream",
]
