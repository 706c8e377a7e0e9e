"""What the sandbox knows: its knobs, the failures tests ask for, and the log of what it saw."""
from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

GENERATIONS = ("agents", "ui-stream", "data-stream", "sse")
KEY_HOSTS = ("inference.cerebras.ai", "chat.cerebras.ai")
PER_STREAM = ("fragment_tool_calls", "sse_error_event")  # knobs whose None means "random per stream"
ROUTES = (
    "cerebras.chat",
    "cerebras.models",
    "cerebras.session",
    "cloudflare.chat",
    "cloudflare.models",
)


@dataclass
class Fault:
    """A failure forced on one route, for the next `times` requests (None: until cleared).

    status: answer with this status and the service's error body instead of serving.
    retry_after / retry_after_ms: the headers sent with a forced 429 or 503 (None: not sent).
    reset_tokens_minute: `x-ratelimit-reset-tokens-minute` on a forced 429 (float seconds).
    truncate_after: cut the stream after this many chunks (connection closed, no terminal marker).
    malformed_at: send a malformed line in place of this chunk.
    error_at: send the protocol's mid-stream error in place of this chunk and end the stream.
    reset_after: after this many chunks reset the stream: RST_STREAM on HTTP/2, a cut connection
        on HTTP/1.1.
    goaway_after: after this many chunks send GOAWAY on the connection (HTTP/2; on HTTP/1.1 the
        connection closes after the answer, or at once when not graceful).
    goaway_graceful: the GOAWAY lets the answer finish (NO_ERROR); else it cuts it (INTERNAL_ERROR).
    """

    status: int | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    reset_tokens_minute: float = 0.25
    truncate_after: int | None = None
    malformed_at: int | None = None
    error_at: int | None = None
    reset_after: int | None = None
    goaway_after: int | None = None
    goaway_graceful: bool = True
    times: int | None = 1


@dataclass
class Knobs:
    """Behaviour tests can change while the sandbox runs (all times in seconds)."""

    pace: float = 0.0  # delay between streamed chunks
    reply_tokens: int | None = None  # completion length; None: derived from the prompt
    generation: str = "agents"  # the live Cloudflare protocol generation
    demo_key_lifetime: float = 3600.0
    session_lifetime: float = 30 * 86400.0
    clearance_lifetime: float = 1800.0
    cf_bm_lifetime: float = 1800.0
    challenge_delay: float = 0.15  # how long the challenge page's script waits
    interactive_challenge: bool = False  # the challenge wants a human click
    rotate_cookies: bool = False  # every response re-sets session cookies; old values die
    envelope: str = "varying"  # Cerebras chunks: "varying" (padding, token ids, key order...) or "identical"
    usage_chunk: bool = False  # Cerebras: usage in a last chunk of its own with choices: []
    http2: bool = True  # offer h2 in ALPN (False: a server that speaks HTTP/1.1 only)
    h2_idle_goaway: float | None = None  # GOAWAY on an HTTP/2 connection idle this long
    split_writes: bool = True  # writes of random sizes cut at random places (DATA frames, TLS records,
    # unpaced WebSocket frames gathered into 1-32 KiB writes; off: whole 16 KiB pieces)
    compress: bool | str = True  # gzip/br/zstd for HTML, JSON, text (never streams); or one coding
    retire_models: bool = True  # api.cerebras.ai lists only the 2026-08 models; older ids get 404
    # None: picked at random per stream, as the real API varies (spec 4.1); True/False pin it
    fragment_tool_calls: bool | None = None  # a streamed tool call comes in pieces keyed by index
    sse_error_event: bool | None = None  # a mid-stream error is `event: error` (else a plain data event)
    api_block_page: bool = False  # api.cerebras.ai's front answers everything with an HTML 403
    key_host: str = "inference.cerebras.ai"  # where the demo page fetches its key (or chat.cerebras.ai)
    rechallenge_after_pass: int = 0  # this many fresh clearances are challenged on first use
    challenge_websocket: int = 0  # this many WebSocket upgrades get the challenge page, not 101
    upgrade_delay: float = 0.0  # the agents WebSocket upgrade is answered this late (a far front, a slow proxy)
    agents_protocol: str = "2026"  # "2026" (spec 4.2) or "legacy"; see agents_protocol.py
    agents_resume: str = "none"  # "replay": an earlier stream's replay on connect; "own": ours, midway
    agents_recovering: bool = False  # a 2026 agent recovers midway (cf_agent_chat_recovering frames)
    agents_outlive_socket: bool = False  # an answer goes on when its socket drops; resumable (agents_live.py)
    session_has_key: bool = True  # /api/auth/session carries user.demoApiKey (False: GraphQL only)
    field_order: str = "random"  # Cloudflare's chunks and frames: keys "random" per object, or "fixed"
    challenge_detectors: bool = True  # the challenge runs BotD and fpscanner (off: UA/webdriver only)
    rate_limited_keys: list[str] = field(default_factory=list)  # these API keys' chats answer 429, 0 tokens left
    rate_limit_reset: float = 30.0  # x-ratelimit-reset-tokens-minute on those 429s (seconds)

    def field_rng(self) -> random.Random | None:
        """What shuffles one stream's JSON keys (`field_order`), or None to keep them in order."""
        return random.Random() if self.field_order == "random" else None

    def apply(self, changes: dict[str, Any]) -> None:
        """Set the named knobs; unknown names or a bad generation raise ValueError."""
        names = {f.name for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in names:
                raise ValueError(f"unknown knob {name!r}; known: {sorted(names)}")
            if name == "generation" and value not in GENERATIONS:
                raise ValueError(f"generation must be one of {GENERATIONS}")
            if name == "envelope" and value not in ("identical", "varying"):
                raise ValueError("envelope must be 'identical' or 'varying'")
            if name == "agents_protocol" and value not in ("2026", "legacy"):
                raise ValueError("agents_protocol must be '2026' or 'legacy'")
            if name == "agents_resume" and value not in ("none", "replay", "own"):
                raise ValueError("agents_resume must be 'none', 'replay' or 'own'")
            if name in PER_STREAM and value not in (None, True, False):
                raise ValueError(f"{name} must be true, false or null (random per stream)")
            if name == "compress" and value not in (True, False, "gzip", "br", "zstd"):
                raise ValueError("compress must be true, false, 'gzip', 'br' or 'zstd'")
            if name == "field_order" and value not in ("random", "fixed"):
                raise ValueError("field_order must be 'random' or 'fixed'")
            if name == "key_host" and value not in KEY_HOSTS:
                raise ValueError(f"key_host must be one of {KEY_HOSTS}")
            setattr(self, name, value)


def per_stream(value: bool | None, rng: random.Random | None = None) -> bool:
    """A PER_STREAM knob's value for one stream: the pinned one, else a coin toss."""
    return value if value is not None else (rng or random).random() < 0.5


@dataclass
class Tunnel:
    """One CONNECT tunnel, that is one TLS connection from a client."""

    id: int
    host: str
    peer: tuple[str, int]
    client_class: str  # "chrome" or "other", from the ClientHello
    fingerprint: str
    sni: str | None
    alpn: tuple[str, ...]
    opened_at: float = field(default_factory=time.time)
    protocol: str | None = None  # "h2" or "http/1.1", as ALPN chose
    h2_fingerprint: str | None = None  # Akamai form, read from the client's first HTTP/2 frames
    h2_class: str | None = None  # "chrome" or "other"
    h2_mismatch: str | None = None  # why it is not Chrome's
    h2_header_priority: str | None = None  # "exclusive:depends-on:weight" of the first HEADERS


class LoggedHeaders(dict[str, str]):
    """Request headers as received (lower-case names on HTTP/2), looked up case-insensitively."""

    def _key(self, name: object) -> object:
        if isinstance(name, str) and not dict.__contains__(self, name):
            return next((key for key in self if key.lower() == name.lower()), name)
        return name

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, self._key(name))

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, self._key(name))

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, self._key(name), default)


@dataclass
class LoggedRequest:
    """One request the sandbox served, as the server saw it."""

    time: float
    tunnel: int | None
    host: str
    method: str
    path: str
    headers: LoggedHeaders
    cookies: dict[str, str]
    client_class: str | None
    protocol: str = "http/1.1"  # "h2" or "http/1.1"
    h2_fingerprint: str | None = None
    route: str | None = None
    status: int | None = None
    outcome: str = "complete"  # complete | client_disconnected | cancelled | truncated | error
    note: str | None = None  # why the sandbox refused or failed it, when it did
    repeated_headers: dict[str, int] = field(default_factory=dict)  # names sent more than once -> count

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class SandboxState:
    """Knobs, faults and logs shared by the proxy and every replica host."""

    def __init__(self, knobs: Knobs | None = None, log_size: int = 20000) -> None:
        self.knobs = knobs or Knobs()
        self.faults: dict[str, Fault] = {}
        self.requests: deque[LoggedRequest] = deque(maxlen=log_size)
        self.tunnels: deque[Tunnel] = deque(maxlen=log_size)
        self.refused: deque[dict[str, Any]] = deque(maxlen=log_size)
        self.verdicts: deque[Any] = deque(maxlen=log_size)  # challenge.Verdict, newest last
        self.tunnel_by_peer: dict[tuple[str, int], Tunnel] = {}
        self.expired_before = 0.0  # credentials issued before this moment are dead
        self._lock = threading.Lock()
        self._next_tunnel = 0

    # -- faults -------------------------------------------------------------------------------
    def set_fault(self, route: str, fault: Fault) -> None:
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; known: {ROUTES}")
        self.faults[route] = fault

    def take_fault(self, route: str, *, status_only: bool = False) -> Fault | None:
        """The fault for this request on `route`, counting it against the fault's `times`.

        With `status_only`, a fault that only shapes the stream is left for a later request.
        """
        with self._lock:
            fault = self.faults.get(route)
            if fault is None or (status_only and not fault.status):
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self.faults[route]
            return fault

    def expire_all(self) -> None:
        """Every session, key and clearance issued so far stops working now."""
        self.expired_before = time.time() + 1e-6

    def reset(self) -> None:
        """Back to defaults: knobs, faults and logs."""
        self.knobs = Knobs()
        self.faults.clear()
        self.requests.clear()
        self.tunnels.clear()
        self.refused.clear()
        self.verdicts.clear()

    # -- tunnels and logs ---------------------------------------------------------------------
    def open_tunnel(self, host: str, peer: tuple[str, int], hello: Any) -> Tunnel:
        with self._lock:
            self._next_tunnel += 1
            tunnel = Tunnel(
                id=self._next_tunnel,
                host=host,
                peer=peer,
                client_class=hello.client_class,
                fingerprint=hello.fingerprint,
                sni=hello.sni,
                alpn=hello.alpn,
            )
        self.tunnels.append(tunnel)
        self.tunnel_by_peer[peer] = tunnel
        return tunnel

    def handshakes(self, host: str | None = None) -> int:
        """TLS connections seen, for one host or all."""
        return sum(1 for t in self.tunnels if host is None or t.host == host)

    def find(self, host: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests, filtered by host and by path prefix."""
        return [
            r
            for r in list(self.requests)
            if (host is None or r.host == host) and (path is None or r.path.startswith(path))
        ]
