"""How the harvester's Chromium looks like a person's desktop browser to bot detectors.

Every measure is a launch flag or an environment variable of the browser process, so it holds the
same in the page, its iframes and its workers, and nothing is injected into pages (an injected
script is itself detectable: a patched getter's `toString`, a prototype out of place):

- **Screen and window:** headless Chromium reports an 800x600 screen, a tell. It gets the screen
  of a real desktop (`--screen-info`, 1920x1080 with a 27 px top bar as GNOME has) and a maximized
  window (`--window-size`, `--window-position`), so `screen*`, `avail*`, `outer*` and `inner*`
  agree with each other. A visible browser shows the display's own screen.
- **Time zone and languages:** the browser's `TZ` and `--accept-lang` (`navigator.languages`,
  `Accept-Language`), never UTC by default: from the profile's fingerprint file, else the host's
  zone when it is not UTC, else America/New_York. Set them to match the proxy's egress.
- **WebGL:** instead of `--disable-gpu` (SwiftShader, a known headless tell) the GPU process runs
  ANGLE on the host's Mesa driver (`--use-angle=gl-egl`; Mesa's llvmpipe on a machine without a
  GPU, as Linux desktops in virtual machines show). `--ignore-gpu-blocklist` lets WebGL use it;
  `--disable-gpu-compositing` keeps the page's compositing on the CPU, as with `--disable-gpu`
  (compositing a desktop-sized window through llvmpipe cost about 1.5 s a harvest).
- **No CDP leak:** the harvester never enables the Runtime domain (it only evaluates), so
  `console.log` of an error does not call a page's `Error.prepareStackTrace` (fpscanner's hasCDP).
- **Stability:** the values are written to the profile's fingerprint file on first use and read
  from it afterwards, so a profile is the same device on every harvest.

`HARVESTKIT_STEALTH=0` turns it all off (the detectors then flag the browser: the negative
control). `HARVESTKIT_TIMEZONE`, `HARVESTKIT_LANGUAGES` and `HARVESTKIT_SCREEN` override the file.
"""
from __future__ import annotations

import json
import os
import re
import zoneinfo
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harvestkit.cache.errors import CacheWriteError, HarvestkitError
from harvestkit.cache.paths import ensure_private_dir
from harvestkit.cache.record import check_name

from .profiles import browser_root

DEFAULT_TIMEZONE = "America/New_York"  # the most common zone of en-US browsers
DEFAULT_LANGUAGES = ("en-US", "en")
DEFAULT_SCREEN = (1920, 1080)
TOP_BAR = 27  # GNOME's top bar: the work area starts below it
UTC_NAMES = {"UTC", "UCT", "GMT", "Zulu", "Universal", "Greenwich", "GMT0", "GMT+0", "GMT-0"}
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
OFF_VALUES = {"0", "off", "false", "no"}


class StealthConfigError(HarvestkitError, ValueError):
    """A fingerprint setting is invalid; the message names it and what is accepted."""


@dataclass(frozen=True)
class Fingerprint:
    """What the browser shows a site about its device: stable per profile."""

    timezone: str = DEFAULT_TIMEZONE
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    screen: tuple[int, int] = DEFAULT_SCREEN

    def __post_init__(self) -> None:
        check_timezone(self.timezone)
        if not self.languages or not all(isinstance(x, str) and _LANGUAGE.match(x) for x in self.languages):
            raise StealthConfigError(f"languages must be BCP 47 tags such as en-US, not {list(self.languages)!r}")
        width, height = self.screen
        if not (640 <= width <= 7680 and 480 <= height <= 4320):
            raise StealthConfigError(f"screen {width}x{height} is not a desktop's (640x480 to 7680x4320)")

    @property
    def window(self) -> tuple[int, int]:
        """A maximized window: the whole work area."""
        return self.screen[0], self.screen[1] - TOP_BAR

    @property
    def accept_language(self) -> str:
        """The Accept-Language header Chrome derives from the languages."""
        parts = [self.languages[0]]
        parts += [f"{lang};q={max(0.9 - 0.1 * i, 0.1):.1f}" for i, lang in enumerate(self.languages[1:])]
        return ",".join(parts)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["languages"], data["screen"] = list(self.languages), list(self.screen)
        return data

    @classmethod
    def from_json(cls, data: object, source: str) -> Fingerprint:
        if not isinstance(data, dict):
            raise StealthConfigError(f"{source}: expected a JSON object with timezone, languages, screen")
        unknown = set(data) - {"timezone", "languages", "screen"}
        if unknown:
            raise StealthConfigError(f"{source}: unknown settings {sorted(unknown)}; known: timezone, languages, screen")
        try:
            return cls(
                timezone=str(data.get("timezone", DEFAULT_TIMEZONE)),
                languages=tuple(data.get("languages", DEFAULT_LANGUAGES)),
                screen=tuple(int(v) for v in data.get("screen", DEFAULT_SCREEN)),  # type: ignore[arg-type]
            )
        except (TypeError, ValueError) as exc:  # StealthConfigError included
            raise StealthConfigError(f"{source}: {exc}") from None


def check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise StealthConfigError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin") from None
    return name


def is_utc(name: str) -> bool:
    return name in UTC_NAMES or name.startswith("Etc/")


def host_timezone() -> str | None:
    """The IANA name of this machine's time zone, when it can be told."""
    configured = os.environ.get("TZ", "").lstrip(":")
    if configured and not configured.startswith("/"):
        return configured
    try:
        return Path("/etc/timezone").read_text().strip() or None
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return None
    return target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else None


def default_timezone() -> str:
    """The host's zone unless it is UTC (a server's, and a headless tell); else America/New_York."""
    zone = host_timezone()
    if zone and not is_utc(zone):
        try:
            return check_timezone(zone)
        except StealthConfigError:
            pass
    return DEFAULT_TIMEZONE


def stealth_enabled() -> bool:
    return os.environ.get("HARVESTKIT_STEALTH", "1").strip().lower() not in OFF_VALUES


def _overrides(fingerprint: Fingerprint) -> Fingerprint:
    """The HARVESTKIT_TIMEZONE / _LANGUAGES / _SCREEN variables applied."""
    changes: dict[str, object] = {}
    if os.environ.get("HARVESTKIT_TIMEZONE"):
        changes["timezone"] = os.environ["HARVESTKIT_TIMEZONE"].strip()
    if os.environ.get("HARVESTKIT_LANGUAGES"):
        changes["languages"] = tuple(x.strip() for x in os.environ["HARVESTKIT_LANGUAGES"].split(",") if x.strip())
    if os.environ.get("HARVESTKIT_SCREEN"):
        match = re.fullmatch(r"\s*(\d+)x(\d+)\s*", os.environ["HARVESTKIT_SCREEN"])
        if match is None:
            raise StealthConfigError("HARVESTKIT_SCREEN must look like 1920x1080")
        changes["screen"] = (int(match.group(1)), int(match.group(2)))
    return replace(fingerprint, **changes) if changes else fingerprint  # type: ignore[arg-type]


def fingerprint_path(profile: str) -> Path:
    """Where `profile`'s fingerprint is kept (beside the browser profiles)."""
    try:
        check_name("profile", profile)
    except ValueError as exc:
        raise StealthConfigError(str(exc)) from None
    return browser_root() / "fingerprints" / f"{profile}.json"


def profile_fingerprint(profile: str) -> Fingerprint | None:
    """The fingerprint of `profile` (None with HARVESTKIT_STEALTH=0): read from its file, written
    there with the defaults on first use, then the environment's overrides applied."""
    if not stealth_enabled():
        return None
    path = fingerprint_path(profile)
    try:
        fingerprint = Fingerprint.from_json(json.loads(path.read_text()), str(path))
    except FileNotFoundError:
        fingerprint = _first_use(path)
    except ValueError as exc:
        if isinstance(exc, StealthConfigError):
            raise
        raise StealthConfigError(f"{path} is not valid JSON ({exc}); fix or delete it") from None
    except OSError as exc:
        raise CacheWriteError(path, exc, "read") from None
    return _overrides(fingerprint)


def _first_use(path: Path) -> Fingerprint:
    """The defaults, written to `path` (private, atomically); a full or read-only disk is a
    `CacheWriteError` naming the path."""
    fingerprint = Fingerprint(timezone=default_timezone())
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        ensure_private_dir(path.parent.parent)
        ensure_private_dir(path.parent)
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            file.write(json.dumps(fingerprint.to_json(), indent=2) + "\n")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CacheWriteError(path, exc) from None
    return fingerprint


def default_fingerprint() -> Fingerprint | None:
    """The fingerprint of a browser started without a profile (defaults and overrides)."""
    return _overrides(Fingerprint(timezone=default_timezone())) if stealth_enabled() else None


def launch_flags(fingerprint: Fingerprint | None, headless: bool) -> list[str]:
    """The command-line flags for `fingerprint` (None: stealth off, headless Chromium's defaults)."""
    if fingerprint is None:
        return ["--disable-gpu"]
    width, height = fingerprint.screen
    window_w, window_h = fingerprint.window
    flags = [
        "--use-angle=gl-egl",
        "--ignore-gpu-blocklist",
        "--disable-gpu-compositing",
        f"--window-size={window_w},{window_h}",
        f"--window-position=0,{TOP_BAR}",
        f"--accept-lang={','.join(fingerprint.languages)}",
        f"--lang={fingerprint.languages[0]}",
    ]
    if headless:
        flags.append(f"--screen-info={{0,0 {width}x{height} workAreaTop={TOP_BAR}}}")
    return flags


def launch_env(fingerprint: Fingerprint | None) -> dict[str, str]:
    """The browser process's environment additions (its time zone and UI language)."""
    if fingerprint is None:
        return {}
    return {"TZ": fingerprint.timezone, "LANGUAGE": fingerprint.languages[0].replace("-", "_")}
