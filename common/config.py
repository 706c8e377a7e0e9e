"""The TOML config file: gateway host, port, keys, CORS origins, model aliases, proxy, profiles.

Found at ``--config PATH``, else ``$HARVESTKIT_CONFIG``, else ``config.toml`` in the platform's
config dir (``~/.config/harvestkit/config.toml`` on Linux); a missing default file is no error.
Environment variables and flags override what it says (see :func:`effective`). Unknown or
mistyped settings are refused with their name, so a typo never passes silently. A file holding
keys (or a store URL with a password) must be owner-only, like the session cache.

```toml
[gateway]
host = "127.0.0.1"
port = 8000
cors_origins = ["http://localhost:3000"]
stream_flush_ms = 1                          # at most one write per streamed response a ms (0: off)
keys_file = "~/.config/harvestkit/keys"     # "name key" lines
[gateway.keys]
laptop = "a-long-random-key"

[models.aliases]
fast = "cerebras/gemma-4-31b"

[sessions]
proxy = "http://user:password@proxy.example:3128"
profile = "default"
store = "rediss://harvestkit:password@redis.internal:6379/0"   # shared by several hosts
[sessions.profiles]
cerebras = "work"

[pools.cerebras]          # several sessions of one site; one is picked per request
members = [{ profile = "work", proxy = "socks5://user:password@10.0.0.2:1080" }, "spare"]
sticky = true             # a request's `user` stays on its session while that one can serve
```
"""

from __future__ import annotations

import functools
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from platformdirs import user_config_dir
from harvestkit.cache.errors import HarvestkitError

__all__ = [
    "CONFIG_VARIABLE",
    "MAX_STREAM_FLUSH_MS",
    "STREAM_FLUSH_MS",
    "Config",
    "ConfigError",
    "PoolSpec",
    "check_stream_flush",
    "default_path",
    "load_config",
    "stream_flush_text",
]

CONFIG_VARIABLE = "HARVESTKIT_CONFIG"
STREAM_FLUSH_MS = 1.0  # the gateway writes a streamed response at most once in this time
MAX_STREAM_FLUSH_MS = 1000.0

SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "gateway": {"host": str, "port": int, "cors_origins": list, "keys_file": str, "keys": dict,
                "stream_flush_ms": (int, float)},
    "models": {"aliases": dict},
    "sessions": {"proxy": str, "profile": str, "profiles": dict, "store": str},
    "pools": {},  # one table per site, checked by _pools
}
POOL_SETTINGS = {"members": list, "sticky": bool}
MEMBER_SETTINGS = ("profile", "proxy")


class ConfigError(HarvestkitError, ValueError):
    """A config file that cannot be used; the message names the file and the setting."""


@dataclass(frozen=True)
class PoolSpec:
    """``[pools.<site>]``: the members (profile, proxy or None) and whether conversations stick."""

    site: str
    members: tuple[tuple[str, str | None], ...]
    sticky: bool = True


@dataclass(frozen=True)
class Config:
    """What the file says (empty when there is none)."""

    path: Path | None = None
    host: str | None = None
    port: int | None = None
    cors_origins: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    keys_file: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    proxy: str | None = None
    profile: str | None = None
    profiles: dict[str, str] = field(default_factory=dict)
    store: str | None = None  # the session store's URL (see harvestkit.cache.backend)
    pools: dict[str, PoolSpec] = field(default_factory=dict)
    stream_flush_ms: float | None = None


def stream_flush_text(value: float) -> str:
    """How a ``stream_flush_ms`` is shown (status page, ``doctor``)."""
    return f"{value:g} ms" if value else "off"


def check_stream_flush(value: float, where: str) -> float:
    """``value`` if it is a valid ``stream_flush_ms``, else :class:`ConfigError` naming ``where``."""
    if not 0 <= value <= MAX_STREAM_FLUSH_MS:  # NaN fails both
        raise ConfigError(f"{where} must be between 0 and {MAX_STREAM_FLUSH_MS:g} ms, not {value:g}")
    return value


def masked_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``****``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:****@{host}"))


_DIR_VARIABLES = ("XDG_CONFIG_HOME", "HOME", "APPDATA", "LOCALAPPDATA")  # what platformdirs reads


def default_path() -> Path:
    """The platform's config file (looked up once for each value of the variables it depends on:
    every request of a client asks which session store the config names)."""
    return _default_path(tuple(os.environ.get(name) for name in _DIR_VARIABLES))


@functools.lru_cache(maxsize=16)
def _default_path(variables: tuple[str | None, ...]) -> Path:
    return Path(user_config_dir("harvestkit", appauthor=False)) / "config.toml"


def _strings(table: Mapping[str, Any], where: str) -> dict[str, str]:
    bad = [name for name, value in table.items() if not isinstance(value, str)]
    if bad:
        raise ConfigError(f"{where}.{bad[0]} must be a string")
    return dict(table)


def _check(data: dict[str, Any], path: Path) -> None:
    for section, table in data.items():
        if section not in SCHEMA:
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(SCHEMA)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} must be a table")
        if section == "pools":
            continue
        for name, value in table.items():
            expected = SCHEMA[section].get(name)
            if expected is None:
                raise ConfigError(f"{path}: unknown setting {section}.{name} (known: {', '.join(SCHEMA[section])})")
            if isinstance(value, bool) or not isinstance(value, expected):
                kind = expected.__name__ if isinstance(expected, type) else "number"
                raise ConfigError(f"{path}: {section}.{name} must be a {'table' if kind == 'dict' else kind}")


def _private(path: Path, mode: int, what: str = "gateway keys") -> None:
    if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
        raise ConfigError(f"{path} holds {what} and is readable by others (mode {stat.S_IMODE(mode):o}); "
                          f"run: chmod 600 {path}")  # fmt: skip


def _member(value: Any, where: str) -> tuple[str, str | None]:
    from harvestkit.client.pool import Member  # its checks: a valid profile name, a proxy URL

    entry = {"profile": value} if isinstance(value, str) else value
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a profile name or a table {{ profile = \"...\", proxy = \"...\" }}")
    unknown = [name for name in entry if name not in MEMBER_SETTINGS]
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]} (known: {', '.join(MEMBER_SETTINGS)})")
    profile, proxy = entry.get("profile"), entry.get("proxy")
    if not isinstance(profile, str) or not (proxy is None or isinstance(proxy, str)):
        raise ConfigError(f"{where}: profile and proxy must be strings")
    try:
        Member(profile, proxy)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return profile, proxy


def _pools(table: dict[str, Any], path: Path) -> dict[str, PoolSpec]:
    """``[pools.<site>]`` tables: a known site, members (profiles, each once), sticky."""
    from harvestkit.harvester.sites import SITES

    pools = {}
    for site, pool in table.items():
        where = f"{path}: pools.{site}"
        if site not in SITES:
            raise ConfigError(f"{path}: unknown site [pools.{site}] (known: {', '.join(SITES)})")
        if not isinstance(pool, dict):
            raise ConfigError(f"{where} must be a table with members = [...]")
        for name, value in pool.items():
            if name not in POOL_SETTINGS:
                raise ConfigError(f"{where}: unknown setting {name} (known: {', '.join(POOL_SETTINGS)})")
            if not isinstance(value, POOL_SETTINGS[name]):
                raise ConfigError(f"{where}.{name} must be a {'list' if name == 'members' else 'boolean'}")
        members = tuple(_member(value, f"{where}.members[{i}]") for i, value in enumerate(pool.get("members", [])))
        if not members:
            raise ConfigError(f"{where}.members lists no session: name at least one profile")
        profiles = [profile for profile, _ in members]
        twice = next((p for p in profiles if profiles.count(p) > 1), None)
        if twice:
            raise ConfigError(f"{where}.members names the profile {twice!r} twice: each member needs its own profile")
        pools[site] = PoolSpec(site, members, pool.get("sticky", True))
    return pools


def load_config(path: str | Path | None = None) -> Config:
    """The config at ``path`` (required to exist), else the default one (optional)."""
    explicit = path or os.environ.get(CONFIG_VARIABLE) or None
    chosen = Path(explicit).expanduser() if explicit else default_path()
    try:
        mode = chosen.stat().st_mode
        raw = chosen.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"no config file at {chosen}") from None
        return Config()
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {chosen}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{chosen} is not valid TOML: {exc}") from None
    _check(data, chosen)
    gateway, models, sessions = data.get("gateway", {}), data.get("models", {}), data.get("sessions", {})
    keys = _strings(gateway.get("keys", {}), f"{chosen}: gateway.keys")
    if keys:
        _private(chosen, mode)
    store = sessions.get("store")
    if store and urlsplit(store).password:
        _private(chosen, mode, "the session store's password")
    origins = gateway.get("cors_origins", [])
    if not all(isinstance(origin, str) for origin in origins):
        raise ConfigError(f"{chosen}: gateway.cors_origins must be a list of strings")
    pools = _pools(data.get("pools", {}), chosen)
    if any(urlsplit(proxy).password for pool in pools.values() for _, proxy in pool.members if proxy):
        _private(chosen, mode, "proxy passwords")
    port = gateway.get("port")
    if port is not None and not 0 <= port <= 65535:
        raise ConfigError(f"{chosen}: gateway.port must be between 0 and 65535")
    flush = gateway.get("stream_flush_ms")
    if flush is not None:
        check_stream_flush(flush, f"{chosen}: gateway.stream_flush_ms")
    return Config(
        path=chosen,
        host=gateway.get("host"),
        port=port,
        cors_origins=list(origins),
        keys=keys,
        keys_file=gateway.get("keys_file"),
        aliases=_strings(models.get("aliases", {}), f"{chosen}: models.aliases"),
        proxy=sessions.get("proxy"),
        profile=sessions.get("profile"),
        profiles=_strings(sessions.get("profiles", {}), f"{chosen}: sessions.profiles"),
        store=store,
        pools=pools,
        stream_flush_ms=flush,
    )


@dataclass(frozen=True)
class Effective:
    """The gateway settings in effect, each with where it came from (flag, env, config, default)."""

    host: str
    port: int
    keys: dict[str, str]
    cors_origins: list[str]
    aliases: dict[str, str]
    proxy: str | None
    profile: str | None
    profiles: dict[str, str]
    sources: dict[str, str]
    config_path: Path | None
    pools: dict[str, PoolSpec] = field(default_factory=dict)
    store: str | None = None  # the session store's URL; None: the file store
    stream_flush_ms: float = STREAM_FLUSH_MS

    def describe(self) -> dict[str, str]:
        """Every setting as text, secrets masked (key names only, no proxy password)."""
        def shown(name: str, value: str) -> str:
            return f"{value} ({self.sources[name]})"

        return {
            "config file": str(self.config_path) if self.config_path else f"none ({default_path()} does not exist)",
            "listen": shown("listen", f"{self.host}:{self.port}"),
            "keys": shown("keys", ", ".join(sorted(self.keys)) or "none"),
            "cors origins": shown("cors_origins", ", ".join(self.cors_origins) or "off"),
            "model aliases": shown("aliases", ", ".join(f"{a} -> {t}" for a, t in self.aliases.items()) or "none"),
            "proxy": shown("proxy", masked_url(self.proxy) if self.proxy else "none"),
            "profile": shown("profile", self.profile or "default")
            + "".join(f"; {site}: {p}" for site, p in self.profiles.items()),
            "pools": "; ".join(f"{site}: " + ", ".join(profile + (f" via {masked_url(proxy)}" if proxy else "")
                                                      for profile, proxy in pool.members)
                               for site, pool in self.pools.items()) or "none",
            "session store": shown("store", masked_url(self.store) if self.store else "files on this host"),
            "stream flush": shown("stream_flush_ms", stream_flush_text(self.stream_flush_ms)),
        }


def effective(
    config: Config,
    *,
    host: str | None = None,
    port: int | None = None,
    api_key: str | None = None,
    keys_file: str | None = None,
    cors_origins: list[str] | None = None,
    profile: str | None = None,
    stream_flush_ms: float | None = None,
    env: Mapping[str, str] | None = None,
) -> Effective:
    """Flags (the keywords) over the environment over the config file over the defaults. Keys:
    ``--api-key``/``HARVESTKIT_GATEWAY_KEY`` (named ``default``), ``HARVESTKIT_GATEWAY_KEYS`` and
    ``--keys-file``, when any is given, replace the config's keys and keys file."""
    from .keyfile import KeyConfigError, parse_keys_file, parse_keys_variable

    env = os.environ if env is None else env
    sources: dict[str, str] = {}

    def pick(name: str, *candidates: tuple[Any, str], default: Any = None) -> Any:
        for value, source in candidates:
            if value not in (None, [], {}):
                sources[name] = source
                return value
        sources[name] = "default"
        return default

    try:
        given: dict[str, str] = {}
        single = api_key or env.get("HARVESTKIT_GATEWAY_KEY") or None
        if single:
            given["default"] = single
        given.update(parse_keys_variable(env.get("HARVESTKIT_GATEWAY_KEYS", "")))
        if keys_file:
            given.update(parse_keys_file(keys_file))
        from_config = dict(parse_keys_file(config.keys_file)) if config.keys_file and not given else {}
        from_config.update(config.keys)
    except KeyConfigError as exc:
        raise ConfigError(str(exc)) from None
    flag_keys = "flag" if api_key or keys_file else "env"
    keys = pick("keys", (given, flag_keys), (from_config, "config"), default={})
    listen_host = pick("host", (host, "flag"), (config.host, "config"), default="127.0.0.1")
    listen_port = pick("port", (port, "flag"), (config.port, "config"), default=8000)
    sources["listen"] = sources["port"] if sources["host"] == "default" else sources["host"]
    return Effective(
        host=listen_host,
        port=listen_port,
        keys=keys,
        cors_origins=pick("cors_origins", (cors_origins, "flag"), (config.cors_origins, "config"), default=[]),
        aliases=pick("aliases", (config.aliases, "config"), default={}),
        proxy=pick("proxy", (env.get("HARVESTKIT_PROXY"), "env HARVESTKIT_PROXY"), (config.proxy, "config")),
        profile=pick("profile", (profile, "flag"), (config.profile, "config")),
        profiles=dict(config.profiles),
        store=pick("store", (env.get("HARVESTKIT_STORE", "").strip() or None, "env HARVESTKIT_STORE"), (config.store, "config")),
        sources=sources,
        config_path=config.path,
        pools=dict(config.pools),
        stream_flush_ms=pick("stream_flush_ms", (stream_flush_ms, "flag"), (config.stream_flush_ms, "config"),
                             default=STREAM_FLUSH_MS),
    )
