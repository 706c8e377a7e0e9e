"""The errors of a shared session store (the Redis backend and the `HARVESTKIT_STORE` setting).

All derive from `CacheError`, so code that handles the file store's errors handles these too.
No message holds a secret: a store is named by its redacted URL (see `redact_url`).
"""

from __future__ import annotations

from .errors import CacheError, CacheLockTimeout


class StoreError(CacheError):
    """Base class of the shared store's errors."""


class StoreConfigError(StoreError, ValueError):
    """`HARVESTKIT_STORE` (or a store URL) is not a store harvestkit can use."""


class StoreUnavailable(StoreError, ConnectionError):
    """The store's server could not be reached, or the connection broke during a call.

    The call had no effect, except a write whose reply was lost (`outcome_unknown`): it was
    applied completely or not at all. The next call reconnects by itself.
    """

    def __init__(self, store: str, operation: str, reason: str, *, outcome_unknown: bool = False) -> None:
        self.store = store
        self.operation = operation
        self.outcome_unknown = outcome_unknown
        outcome = " (it may or may not have been applied)" if outcome_unknown else ""
        super().__init__(
            f"the session store {store} is unavailable: {operation} failed{outcome}: {reason}. "
            "Check that the Redis server is running and reachable; the next call reconnects"
        )


class StoreAuthError(StoreError):
    """The store's server refused the credentials of the store URL (or wants some), or its ACL
    does not let that user run the store's commands on its keys."""

    CREDENTIALS = "Fix the user and password in HARVESTKIT_STORE (redis://USER:PASSWORD@HOST:PORT/DB)"
    PERMISSIONS = (
        "Grant the store's Redis user its keys and commands: ACL SETUSER <user> ~<prefix>* "
        "+@read +@write +@transaction +@scripting -@dangerous"
    )

    def __init__(self, store: str, reason: str, *, permissions: bool = False) -> None:
        self.store = store
        refused = "refused a command" if permissions else "refused the connection"
        super().__init__(f"the session store {store} {refused}: {reason}. {self.PERMISSIONS if permissions else self.CREDENTIALS}")


class StoreTimeout(CacheLockTimeout):
    """A wait in the shared store (a refresh lease held elsewhere, a contended update) timed out.

    A `CacheLockTimeout`, like the file store's; `holder` names the holding host and pid
    ("host:pid") when known, `holder_pid` is that pid.
    """

    def __init__(self, what: str, timeout: float, holder: str | None) -> None:
        self.path = None
        self.timeout = timeout
        self.holder = holder
        pid = holder.rpartition(":")[2] if holder else ""
        self.holder_pid = int(pid) if pid.isdigit() else None
        CacheError.__init__(self, f"timed out after {timeout:g} s waiting for {what}, held by {holder or 'nobody known'}")


class LeaseLost(StoreError):
    """A refresh lease ran out before its harvest was stored, and another caller took over: the
    late write was refused (by its fencing token), so it cannot overwrite a newer session."""

    def __init__(self, site: str, profile: str, token: int) -> None:
        self.site = site
        self.profile = profile
        self.token = token
        super().__init__(
            f"the refresh of {site}/{profile} lost its lease (fencing token {token}) before storing its "
            "harvest, and another caller took over: the harvested session was discarded. Retry to use "
            "the newer one; a harvest that outlives its lease means the lease renewal could not reach "
            "the store in time"
        )
