"""Progress events of a harvest, for the command (or any caller) to show as they happen."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# The steps, in the order they usually come. "challenge-seen"/"challenge-passed" only when the site
# challenged the browser; "waiting-for-user" only in a login; "reused" instead of "saved" when
# another process harvested the same session meanwhile.
STEPS = (
    "browser-started",
    "page-loaded",
    "challenge-seen",
    "challenge-passed",
    "waiting-for-user",
    "signed-in",
    "key-captured",
    "captured",
    "browser-stopped",
    "saved",
    "reused",
)


@dataclass(frozen=True)
class Progress:
    """One step of a harvest: `elapsed` seconds since the call started, for `site`."""

    step: str
    elapsed: float
    site: str
    detail: str = ""

    def __str__(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"[{self.elapsed:6.3f} s] {self.site} {self.step}{detail}"


ProgressFn = Callable[[Progress], None]


class Reporter:
    """Stamps steps with the time since the harvest started and hands them to the callback."""

    def __init__(self, callback: ProgressFn | None) -> None:
        self.callback = callback
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __call__(self, step: str, site: str, detail: str = "") -> None:
        if self.callback is not None:
            self.callback(Progress(step, round(self.elapsed(), 4), site, detail))
