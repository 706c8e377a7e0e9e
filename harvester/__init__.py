"""harvestkit.harvester: a real Chromium opens a site, gets past its checks, and captures a session.

    record = await harvest("cloudflare")          # or harvest_sync(...), from sync code
    record = await login("cerebras")              # a visible browser; waits for the user's sign-in
    both = await harvest_many(["cerebras", "cloudflare"])   # one browser, a tab per site

Sites are recipes (`SITES`, see `harvestkit.harvester.sites`); progress comes as `Progress` events.
"""
from .api import harvest, harvest_many, harvest_sync, login, login_sync
from .errors import (
    BrowserDied,
    BrowserError,
    BrowserNotFound,
    BrowserStartError,
    ChallengeNeedsHuman,
    ChallengeRefused,
    HarvestError,
    HarvestTimeout,
    NeedsHuman,
    NoDisplay,
    ProfileInUse,
    SignedOut,
    SiteUnreachable,
)
from .profiles import browser_root, profile_dir
from .progress import STEPS, Progress
from .recipe import Challenge, InPageFetch, Recipe, Sniff
from .sites import SITES

__all__ = [
    "SITES",
    "STEPS",
    "BrowserDied",
    "BrowserError",
    "BrowserNotFound",
    "BrowserStartError",
    "Challenge",
    "ChallengeNeedsHuman",
    "ChallengeRefused",
    "HarvestError",
    "HarvestTimeout",
    "InPageFetch",
    "NeedsHuman",
    "NoDisplay",
    "ProfileInUse",
    "Progress",
    "Recipe",
    "SignedOut",
    "SiteUnreachable",
    "Sniff",
    "browser_root",
    "harvest",
    "harvest_many",
    "harvest_sync",
    "login",
    "login_sync",
    "profile_dir",
]
