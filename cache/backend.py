"""One session-store interface, two backends, and the factory that picks one.

`SessionStore` is what every backend offers: `AuthCache` (the file store, the default, one
host) and `RedisStore` (shared by every host that names the same Redis server). `open_store()`
picks by its `url` argument, else the `HARVESTKIT_STORE` environment variable, else the config
file's ``[sessions] store`` (see `harvestkit.common.config`), else the file store:

- unset, empty, or ``file:`` -- the file store at its default place; ``file:///some/dir`` -- the
  file store rooted at that directory;
- ``redis://[USER:PASSWORD@]HOST[:PORT][/DB]`` -- a Redis (or Valkey) server; ``rediss://`` for
  TLS. Query options: ``prefix=`` (key prefix, default ``harvestkit:``), ``lease=`` (seconds a
  refresh lease lasts without renewal), ``ssl_ca_certs=``, ``ssl_certfile=``, ``ssl_keyfile=``,
  ``socket_timeout=`` and ``socket_connect_timeout=``.

Every caller in a process that opens the same Redis URL with the same options gets the same
`RedisStore`, so its connections are shared rather than opened per call.
"""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from .record import DEFAULT_PROFILE, SessionRecord
from .redact import redact_url
from .base import HarvestFn, UpdateFn
from .store import AuthCache
from .store_errors import StoreConfigError

if TYPE_CHECKING:
    from .redis_store import RedisStore

ENV_STORE = "HARVESTKIT_STORE"
_shared: dict[tuple[str, tuple[tuple[str, Any], ...]], RedisStore] = {}
_lock = threading.Lock()
_config: dict[str, Any] = {"path": None, "seen": None, "store": ""}


@runtime_checkable
class SessionStore(Protocol):
    """The session records of (site, profile) pairs; see `AuthCache` for each method's contract.

    Every backend keeps these guarantees: `update` is atomic (concurrent updates from any number
    of processes or hosts lose none); `refresh` is single-flight (one harvest per expiry among
    all callers that share the store; the others wait and take its record); an unreadable record
    is quarantined with a `CacheCorruptWarning` and read as no session; a record from a newer
    harvestkit raises `CacheSchemaError` and is kept; no message holds a secret.
    """

    max_age: float
    lock_timeout: float
    refresh_timeout: float

    @property
    def location(self) -> str:
        """Where the records are, for messages (no secret in it)."""
        ...

    def keys(self) -> builtins.list[tuple[str, str]]: ...
    def get_sync(self, site: str, profile: str = DEFAULT_PROFILE) -> SessionRecord | None: ...
    def list_sync(self) -> builtins.list[SessionRecord]: ...
    def put_sync(self, record: SessionRecord, *, timeout: float | None = None) -> None: ...
    def update_sync(
        self,
        site: str,
        fn: UpdateFn,
        profile: str = DEFAULT_PROFILE,
        *,
        timeout: float | None = None,
        best_effort: bool = False,
    ) -> SessionRecord | None: ...
    def delete_sync(self, site: str, profile: str = DEFAULT_PROFILE, *, timeout: float | None = None) -> bool: ...
    def is_fresh(
        self, record: SessionRecord | None, margin: float = 0.0, *, max_age: float | None = None, now: float | None = None
    ) -> bool: ...
    def refresh_sync(
        self,
        site: str,
        fn: Callable[[], SessionRecord],
        margin: float = 0.0,
        profile: str = DEFAULT_PROFILE,
        *,
        force: bool = False,
        max_age: float | None = None,
        timeout: float | None = None,
    ) -> SessionRecord: ...
    async def aclose(self) -> None: ...
    async def get(self, site: str, profile: str = DEFAULT_PROFILE) -> SessionRecord | None: ...
    async def list(self) -> builtins.list[SessionRecord]: ...
    async def put(self, record: SessionRecord, *, timeout: float | None = None) -> None: ...
    async def update(
        self,
        site: str,
        fn: UpdateFn,
        profile: str = DEFAULT_PROFILE,
        *,
        timeout: float | None = None,
        best_effort: bool = False,
    ) -> SessionRecord | None: ...
    async def delete(self, site: str, profile: str = DEFAULT_PROFILE, *, timeout: float | None = None) -> bool: ...
    async def refresh(
        self,
        site: str,
        fn: HarvestFn,
        margin: float = 0.0,
        profile: str = DEFAULT_PROFILE,
        *,
        force: bool = False,
        max_age: float | None = None,
        timeout: float | None = None,
        stale: float | None = None,
    ) -> SessionRecord: ...
    def import_cookies(
        self, site: str, text: str, fmt: str | None = None, profile: str = DEFAULT_PROFILE, *, replace: bool = False
    ) -> SessionRecord: ...
    def export_cookies(self, site: str, fmt: str = "netscape", profile: str = DEFAULT_PROFILE) -> str: ...


def use_config(path: str | os.PathLike[str] | None) -> None:
    """Read the default store from the config file at `path` (None: `$HARVESTKIT_CONFIG` or the
    platform's), as `harvestkit serve --config PATH` does for its process."""
    _config["path"] = None if path is None else Path(path).expanduser()


def _config_store() -> str:
    """The config file's ``[sessions] store``, re-read only when the file changes."""
    from harvestkit.common.config import CONFIG_VARIABLE, ConfigError, default_path, load_config

    explicit = _config["path"] or os.environ.get(CONFIG_VARIABLE) or None
    path = Path(explicit).expanduser() if explicit else default_path()
    try:
        stat = path.stat()
        seen: tuple[Any, ...] = (path, explicit is not None, stat.st_mtime_ns, stat.st_size)
    except OSError:
        seen = (path, explicit is not None, None, None)
    if seen != _config["seen"]:
        try:
            store = load_config(explicit).store or ""
        except ConfigError as exc:
            raise StoreConfigError(f"cannot tell which session store to use: {exc}") from None
        _config.update(seen=seen, store=store)
    return _config["store"]


def store_url() -> str:
    """The store URL in effect: `HARVESTKIT_STORE`, else the config file's, else "" (files)."""
    return os.environ.get(ENV_STORE, "").strip() or _config_store().strip()


def open_store(url: str | None = None, **options: Any) -> AuthCache | RedisStore:
    """The session store named by `url`, else by `store_url()`, else the file store.

    `options` go to the backend's constructor (`lock_timeout`, `refresh_timeout`, `max_age`; for
    Redis also `lease`, `record_grace`, `prefix`). Raises `StoreConfigError` for a URL it cannot
    use, naming the fix (the password is never shown). Connecting happens on the first call; a
    Redis store is shared by every caller in the process with the same URL and options.
    """
    url = (store_url() if url is None else url).strip()
    scheme = urlsplit(url).scheme.lower()
    if not url or scheme == "file":
        path = unquote(urlsplit(url).path) if url else ""
        if url and path and not path.startswith("/"):
            raise StoreConfigError(f"{ENV_STORE}={url}: a file store needs an absolute path (file:///path/to/dir)")
        return AuthCache(path or None, **options)
    if scheme in ("redis", "rediss"):
        key = (url, tuple(sorted(options.items())))
        with _lock:
            if key not in _shared:
                _shared[key] = _redis_store(url, options)
            return _shared[key]
    raise StoreConfigError(
        f"{ENV_STORE}={redact_url(url)!s} is not a store harvestkit knows: use redis://[USER:PASSWORD@]HOST:PORT/DB, "
        "rediss://... for TLS, or leave it unset for the file store"
    )


async def close_shared_stores() -> None:
    """Close the running loop's connections of every shared Redis store (a server stopping);
    they reopen on the next call."""
    with _lock:
        stores = list(_shared.values())
    for store in stores:
        await store.aclose()


def _redis_store(url: str, options: dict[str, Any]) -> RedisStore:
    try:
        from .redis_store import RedisStore
    except ImportError as exc:
        if exc.name not in ("redis", "redis.asyncio"):
            raise
        raise StoreConfigError(
            f"{ENV_STORE} names a Redis server, but redis-py is not installed: pip install 'harvestkit[redis]'"
        ) from None
    return RedisStore(url, **options)
