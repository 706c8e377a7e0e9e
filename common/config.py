"""The TOML config file: gateway host, port, keys, CORS origins, model aliases, proxy, profiles.

Found at ``--config PATH``, else ``$HARVESTKIT_CONFIG``, else ``config.toml`` in the platform's
config dir (``~/.config/harvestkit/config.toml`` on Linux); a missing default file is no error.
Environment variables and flags override what it says (see :func:`effective`). Unknown or
mistyped settings are refused with their name, so a typo never passes silently. A file holding
keys must be owner-only, like the session cache.

```toml
[gateway]
host = "127.0.0.1"
port = 8000
cors_origins = ["http://localhost:3000"]
keys_file = "~/.config/harvestkit/keys"     # "name key" lines
[gateway.keys]
laptop = "a-long-random-key"

[models.aliases]
fast = "cerebras/gemma-4-31b"

[sessions]
proxy = "http://user:password@proxy.example:3128"
profile = "default"
[sessions.profiles]
cerebras = "work"
```
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from platformdirs import user_config_dir

__all__ = ["CONFIG_VARIABLE", "Config", "ConfigError", "default_path", "load_config"]

CONFIG_VARIABLE = "HARVESTKIT_CONFIG"

SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "gateway": {"host": str, "port": int, "cors_origins": list, "keys_file": str, "keys": dict},
    "models": {"aliases": dict},
    "sessions": {"proxy": str, "profile": str, "profiles": dict},
}


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the setting."""


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


def masked_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``****``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:****@{host}"))


def default_path() -> Path:
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
        for name, value in table.items():
            expected = SCHEMA[section].get(name)
            if expected is None:
                raise ConfigError(f"{path}: unknown setting {section}.{name} (known: {', '.join(SCHEMA[section])})")
            if isinstance(value, bool) or not isinstance(value, expected):
                kind = expected.__name__ if isinstance(expected, type) else expected[0].__name__
                raise ConfigError(f"{path}: {section}.{name} must be a {'table' if kind == 'dict' else kind}")


def _private(path: Path, mode: int) -> None:
    if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
        raise ConfigError(f"{path} holds gateway keys and is readable by others (mode {stat.S_IMODE(mode):o}); "
                          f"run: chmod 600 {path}")  # fmt: skip


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
    origins = gateway.get("cors_origins", [])
    if not all(isinstance(origin, str) for origin in origins):
        raise ConfigError(f"{chosen}: gateway.cors_origins must be a list of strings")
    port = gateway.get("port")
    if port is not None and not 0 <= port <= 65535:
        raise ConfigError(f"{chosen}: gateway.port must be between 0 and 65535")
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
        sources=sources,
        config_path=config.path,
    )
