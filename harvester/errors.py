"""Errors of the harvester: a browser that cannot be found, started, or kept alive."""
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
