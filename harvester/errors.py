"""Errors of the harvester: the browser itself, and the sites it harvests.

`BrowserError` covers a browser that cannot be found, started or kept alive. `HarvestError` covers
what a site (or its profile) did: `NeedsHuman` is the family a person can fix (sign in once, click a
challenge, log in where a screen exists), which the command maps to exit code 3. No message carries
a secret: they name sites, profiles, hosts, pids and HTTP statuses only.
"""
from __future__ import annotations

from harvestkit.cache.errors import HarvestkitError


class BrowserError(HarvestkitError):
    """Something went wrong with the browser itself."""


class BrowserNotFound(BrowserError):
    """No Chromium or Chrome was found; the message says how to install one."""


class BrowserStartError(BrowserError):
    """The browser was found but did not start (the message has the end of its output)."""


class BrowserDied(BrowserError):
    """The browser exited or stopped answering in the middle of a harvest."""


class HarvestError(HarvestkitError):
    """A site could not be harvested; `site` and `profile` say which."""

    def __init__(self, message: str, *, site: str | None = None, profile: str | None = None) -> None:
        self.site = site
        self.profile = profile
        super().__init__(message)


class NeedsHuman(HarvestError):
    """Only a person can get past this (sign in, solve a challenge, use a screen)."""


class SignedOut(NeedsHuman):
    """The profile is not signed in to a site that needs a sign-in, and no one is there to do it."""

    def __init__(self, site: str, profile: str) -> None:
        option = "" if profile == "default" else f" --profile {profile}"
        super().__init__(
            f"{site}: the browser profile {profile!r} is signed out. Sign in once with "
            f"`harvestkit login {site}{option}` (it opens a browser window), or import the cookies of "
            f"a signed-in browser with `harvestkit cache import {site}{option} <cookies file>`",
            site=site,
            profile=profile,
        )


class ChallengeNeedsHuman(NeedsHuman):
    """The site's bot check wants a click or a puzzle, which a headless harvest cannot give."""

    def __init__(self, site: str, profile: str, host: str) -> None:
        option = "" if profile == "default" else f" --profile {profile}"
        super().__init__(
            f"{site}: {host} shows an interactive challenge that needs a person. Solve it once in a "
            f"visible browser with `harvestkit login {site}{option}`",
            site=site,
            profile=profile,
        )


class NoDisplay(NeedsHuman):
    """A visible browser was asked for where there is no screen."""

    def __init__(self, site: str, profile: str) -> None:
        option = "" if profile == "default" else f" --profile {profile}"
        super().__init__(
            f"{site}: logging in needs a visible browser, but there is no display here (neither DISPLAY "
            f"nor WAYLAND_DISPLAY is set). Run `harvestkit login {site}{option}` on a machine with a "
            f"screen (or over `ssh -X`), or sign in with any browser, export its cookies for the site "
            f"(cookies.txt or a cookie-extension JSON) and run `harvestkit cache import {site}{option} "
            f"<cookies file>` here",
            site=site,
            profile=profile,
        )


class ChallengeRefused(HarvestError):
    """The site's bot check refused this browser outright ("you have been blocked")."""


class HarvestTimeout(HarvestError, TimeoutError):
    """The harvest did not finish within its timeout; the message says what it was waiting for."""


class SiteUnreachable(HarvestError):
    """The site could not be reached: a network or proxy failure, or an HTTP error page."""


class ProfileInUse(HarvestError):
    """Another process holds the browser profile (or the harvest of this session)."""

    def __init__(self, site: str, profile: str, holder_pid: int | None, waited: float) -> None:
        self.holder_pid = holder_pid
        holder = f"pid {holder_pid}" if holder_pid is not None else "another process"
        super().__init__(
            f"{site}: profile {profile!r} in use by {holder} (waited {waited:.3g} s); wait for that "
            "harvest or login to finish, or use another profile",
            site=site,
            profile=profile,
        )
