"""Two ways the current challenge bites after it was passed (spec 4.2), as knobs:

- `rechallenge_after_pass` (a count): the first use of a freshly earned `cf_clearance` is
  challenged again and that clearance is dropped, as users of challenge solvers report;
- `challenge_websocket` (a count): a WebSocket upgrade is answered with the 403 challenge page
  instead of 101 (inferred), and the clearance it carried is dropped.

Each count goes down by one per challenge; 0 is off.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from .state import SandboxState


def is_websocket_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def challenge_again(state: SandboxState, request: web.Request, clearances: dict[str, Any], fresh: set[str]) -> str | None:
    """Why this request is challenged by one of the knobs above, or None.

    `clearances` maps live clearance values to their records; `fresh` holds the values not used
    since they were earned.
    """
    knobs = state.knobs
    value = request.cookies.get("cf_clearance", "")
    if knobs.challenge_websocket > 0 and is_websocket_upgrade(request) and value in clearances:
        knobs.challenge_websocket -= 1
        clearances.pop(value, None)
        return "WebSocket upgrade challenged (challenge_websocket knob)"
    if value in fresh:
        fresh.discard(value)
        if knobs.rechallenge_after_pass > 0 and value in clearances:
            knobs.rechallenge_after_pass -= 1
            clearances.pop(value, None)
            return "challenged again right after a pass (rechallenge_after_pass knob)"
    return None
