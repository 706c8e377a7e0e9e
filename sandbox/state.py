"""What the sandbox knows: its knobs, the failures tests ask for, and the log of what it saw."""
from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

GENERATIONS = ("agents", "ui-stream", "data-stream", "sse")
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
    """

    status: int | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    reset_tokens_minute: float = 0.25
    truncate_after: int | None = None
    malformed_at: int | None = None
    error_at: int | None = None
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
    challenge_detectors: bool = True  # the challenge runs BotD and fpscanner (off: UA/webdriver only)

    def apply(self, changes: dict[str, Any]) -> None:
        """Set the named knobs; unknown names or a bad generation raise ValueError."""
        names = {f.name for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in names:
                raise ValueError(f"unknown knob {name!r}; known: {sorted(names)}")
            if name == "generation" and value not in GENERATIONS:
                raise ValueError(f"generation must be one of {GENERATIONS}")
            setattr(self, name, value)


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


@dataclass
class LoggedRequest:
    """One request the sandbox served, as the server saw it."""

    time: float
    tunnel: int | None
    host: str
    method: str
    path: str
    headers: dict[str, str]
    cookies: dict[str, str]
    client_class: str | None
    route: str | None = None
    status: int | None = None
    outcome: str = "complete"  # complete | client_disconnected | cancelled | truncated | error
    note: str | None = None  # why the sandbox refused or failed it, when it did

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
