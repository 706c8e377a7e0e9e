"""harvestkit.cache: the auth cache of harvested browser sessions.

`AuthCache` stores one `SessionRecord` per (site, profile) in owner-only files (see
`harvestkit.cache.paths` for the location and permissions policy, `harvestkit.cache.store`
for locking, freshness and corruption handling). `open_store()` returns it, or the Redis-backed
`RedisStore` shared by several hosts when `HARVESTKIT_STORE` (or the config file) names a Redis
server (`harvestkit.cache.backend`); both offer the one `SessionStore` interface.
"""

from .cookie import Cookie, domain_match, path_match
from .cookiefiles import (
    FORMATS,
    detect_cookie_format,
    dump_cdp_cookies,
    dump_cookies,
    dump_extension_cookies,
    dump_netscape_cookies,
    parse_cdp_cookies,
    parse_cookies,
    parse_extension_cookies,
    parse_netscape_cookies,
)
from .errors import (
    CacheCorruptError,
    CacheCorruptWarning,
    CacheError,
    CacheLockTimeout,
    CachePermissionError,
    CacheSchemaError,
    CacheWriteError,
    CookieFormatError,
    CookieImportError,
    HarvestkitError,
)
from .paths import default_root
from .record import DEFAULT_PROFILE, SOURCES, SessionRecord, session_expires_at
from .redact import redact
from .schema import SCHEMA_VERSION
from .setcookie import parse_cookie_date, parse_set_cookie, parse_set_cookies
from .store import AuthCache
from .backend import ENV_STORE, SessionStore, open_store, store_url, use_config
from .store_errors import LeaseLost, StoreAuthError, StoreConfigError, StoreError, StoreTimeout, StoreUnavailable

__all__ = [
    "DEFAULT_PROFILE",
    "FORMATS",
    "SCHEMA_VERSION",
    "SOURCES",
    "ENV_STORE",
    "AuthCache",
    "CacheCorruptError",
    "CacheCorruptWarning",
    "CacheError",
    "CacheLockTimeout",
    "CachePermissionError",
    "CacheSchemaError",
    "CacheWriteError",
    "Cookie",
    "CookieFormatError",
    "CookieImportError",
    "HarvestkitError",
    "LeaseLost",
    "RedisStore",
    "SessionRecord",
    "SessionStore",
    "StoreAuthError",
    "StoreConfigError",
    "StoreError",
    "StoreTimeout",
    "StoreUnavailable",
    "default_root",
    "detect_cookie_format",
    "domain_match",
    "dump_cdp_cookies",
    "dump_cookies",
    "dump_extension_cookies",
    "dump_netscape_cookies",
    "open_store",
    "parse_cdp_cookies",
    "parse_cookie_date",
    "parse_cookies",
    "parse_extension_cookies",
    "parse_netscape_cookies",
    "parse_set_cookie",
    "parse_set_cookies",
    "path_match",
    "redact",
    "session_expires_at",
    "store_url",
    "use_config",
]


def __getattr__(name: str) -> object:
    if name == "RedisStore":  # imported on demand: redis-py is an optional extra
        from .redis_store import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
