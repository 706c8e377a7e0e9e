"""The Redis connection of `RedisStore`: URL options, one asyncio client per event loop, and the
translation of redis-py's errors into the store's typed errors (never showing the password).

redis-py's own retries are off: a call that hits a dead or restarting server fails at once with
`StoreUnavailable`, and the next call reconnects (the pool drops a connection the server closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool
from redis import exceptions as rx
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig

from .redact import redact_url
from .store_errors import StoreAuthError, StoreConfigError, StoreError, StoreUnavailable

DEFAULT_PREFIX = "harvestkit:"
# Options redis-py reads from the URL's query (others would fail later, at the first call).
_REDIS_OPTIONS = frozenset(
    {
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "health_check_interval",
        "max_connections",
        "client_name",
        "protocol",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_cert_reqs",
        "ssl_check_hostname",
        "ssl_min_version",
    }
)
_OWN_OPTIONS = frozenset({"prefix", "lease"})
_DEFAULTS = {"socket_timeout": "5", "socket_connect_timeout": "5", "protocol": "2"}  # RESP2: Redis 5 and up
MAX_CONNECTIONS = 32  # per event loop
POOL_WAIT = 5.0  # seconds a call waits for a free connection before StoreUnavailable


@dataclass(frozen=True)
class StoreURL:
    """A parsed `redis://` / `rediss://` store URL: what redis-py gets, and what may be shown."""

    redis_url: str  # with the password: for redis-py only
    display: str  # the password redacted, no query: safe in messages and logs
    password: str | None
    prefix: str
    lease: float | None

    @classmethod
    def parse(cls, url: str) -> StoreURL:
        """Validate `url`; raises `StoreConfigError` naming the problem (never the password)."""
        parts = urlsplit(url)
        shown = urlunsplit(urlsplit(redact_url(url) or "")._replace(query="", fragment=""))
        bad = f"the store URL {shown}"
        if parts.scheme not in ("redis", "rediss"):
            raise StoreConfigError(f"{bad} must start with redis:// or rediss:// (TLS)")
        try:
            port = parts.port
        except ValueError:
            raise StoreConfigError(f"{bad} has an invalid port: use redis://HOST:PORT/DB") from None
        if not parts.hostname:
            raise StoreConfigError(f"{bad} names no host: use redis://HOST:PORT/DB")
        db = parts.path.strip("/") or "0"
        if not db.isdigit():
            raise StoreConfigError(f"{bad} has database {db!r}: the path must be a database number, like /0")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(query) - _REDIS_OPTIONS - _OWN_OPTIONS)
        if unknown:
            raise StoreConfigError(
                f"{bad} has unknown option(s) {', '.join(unknown)}: known are "
                f"{', '.join(sorted(_REDIS_OPTIONS | _OWN_OPTIONS))} (a password goes in USER:PASSWORD@HOST)"
            )
        lease = None
        if "lease" in query:
            try:
                lease = float(query["lease"])
            except ValueError:
                lease = -1.0
            if not lease > 0:
                raise StoreConfigError(f"{bad} has lease={query['lease']!r}: it must be a number of seconds > 0")
        prefix = query.pop("prefix", DEFAULT_PREFIX)
        query.pop("lease", None)
        redis_query = urlencode(_DEFAULTS | query)
        netloc = parts.netloc if port is not None else f"{parts.netloc}:6379"
        return cls(
            redis_url=urlunsplit((parts.scheme, netloc, f"/{db}", redis_query, "")),
            display=shown,
            password=parts.password,
            prefix=prefix,
            lease=lease,
        )


class Connection:
    """Asyncio Redis clients for one store URL, one per event loop (a client's sockets belong to
    the loop that opened them), each with its own connection pool."""

    def __init__(self, url: StoreURL) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def client(self) -> aioredis.Redis:
        """The client of the running event loop (created on first use, connecting lazily)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            try:
                # A bounded pool that waits for a free connection: hundreds of concurrent requests
                # share a few connections, where the default pool refuses the 101st.
                pool = BlockingConnectionPool.from_url(
                    self.url.redis_url,
                    max_connections=MAX_CONNECTIONS,  # the URL's max_connections= wins
                    timeout=POOL_WAIT,
                    retry=Retry(NoBackoff(), 0),
                    driver_info=None,  # no CLIENT SETINFO, no maintenance-notification handshake:
                    maint_notifications_config=MaintNotificationsConfig(enabled=False),  # 1 round trip to connect
                )
            except (ValueError, TypeError) as exc:
                raise StoreConfigError(f"the store URL {self.url.display} is invalid: {self._clean(exc)}") from None
            client = aioredis.Redis(connection_pool=pool)
            client.auto_close_connection_pool = True  # aclose() closes the pool too
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close the running loop's client and its connections."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def _clean(self, exc: BaseException) -> str:
        text = (str(exc) or type(exc).__name__).rstrip(".")
        if self.url.password:
            for form in {self.url.password, unquote(self.url.password)}:
                text = text.replace(form, "****")
        return text

    @contextlib.asynccontextmanager
    async def errors(self, operation: str, *, write: bool = False) -> AsyncIterator[None]:
        """Translate redis-py's errors raised inside into typed store errors."""
        try:
            yield
        except (rx.AuthenticationError, rx.AuthorizationError) as exc:
            raise StoreAuthError(self.url.display, self._clean(exc)) from None
        except rx.NoPermissionError as exc:
            raise StoreAuthError(self.url.display, self._clean(exc), permissions=True) from None
        except (rx.ConnectionError, rx.TimeoutError, OSError) as exc:
            raise self.unavailable(operation, exc, write) from None
        except rx.ResponseError as exc:
            message = self._clean(exc)
            if message.startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
                raise StoreAuthError(self.url.display, message) from None
            if message.startswith(("LOADING", "READONLY", "MISCONF", "MASTERDOWN", "TRYAGAIN")):
                raise self.unavailable(operation, exc, write) from None
            raise StoreError(f"the session store {self.url.display} answered {operation} with an error: {message}") from None

    def unavailable(self, operation: str, exc: BaseException, write: bool) -> StoreUnavailable:
        sent = write and not isinstance(exc, ConnectionRefusedError) and "connecting to" not in str(exc)
        return StoreUnavailable(self.url.display, operation, self._clean(exc), outcome_unknown=sent)


class Script:
    """A Lua script run atomically by the server: EVALSHA, falling back to EVAL once the
    server has forgotten it (after a restart or SCRIPT FLUSH)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, client: aioredis.Redis, keys: list[str], args: list[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except rx.NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)
