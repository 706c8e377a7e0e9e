"""The one redaction helper: how a secret is shown anywhere harvestkit shows one."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

MASK = "****"


def redact(secret: str | None) -> str:
    """Show at most the first and last 4 characters of `secret`, never more than a third of it.

    Secrets under 12 characters are fully masked ("****"); None and "" read as "".
    """
    if not secret:
        return ""
    shown = min(4, len(secret) // 6)
    if shown < 2:
        return MASK
    return f"{secret[:shown]}...{secret[-shown:]}"


def redact_url(url: str | None) -> str | None:
    """A URL (e.g. a proxy) with the password of its user-info masked whole."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{MASK}@{host}"))
