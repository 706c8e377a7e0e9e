"""curl_cffi's failures as the client's errors: a timeout, a proxy's refusal, a request too
large to send, anything else a connection error; no message holds a secret."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from curl_cffi.requests import exceptions as curl_errors
from harvestkit.cache.redact import redact_url

from .errors import ClientError, ConnectError, Timeout, redact_text

__all__ = ["translate"]

_TUNNEL_REFUSED = re.compile(r"CONNECT tunnel failed, response (\d{3})|Received HTTP code (\d{3}) from proxy")
_PROXY_REFUSALS = {
    "407": "wrong or missing proxy credentials: check the user and password in the proxy URL",
    "403": "the proxy does not allow this host",
}


def translate(exc: BaseException, provider: str, url: str, proxy: str | None = None) -> ClientError:
    """A curl_cffi failure as the client's error (the URL without its query; a proxy named
    without its password: `proxy`, else HARVESTKIT_PROXY)."""
    where = url.split("?", 1)[0]
    message = redact_text(str(exc).split(". See ", 1)[0])
    if isinstance(exc, curl_errors.Timeout):
        return Timeout(f"timed out talking to {where}: {message}", provider=provider)
    refused = _TUNNEL_REFUSED.search(message)
    if refused:
        status = refused.group(1) or refused.group(2)
        named = redact_url(proxy or os.environ.get("HARVESTKIT_PROXY")) or "the proxy"
        host = urlsplit(url).hostname or where
        why = _PROXY_REFUSALS.get(status, "the proxy refused the tunnel")
        return ConnectError(
            f"proxy {named} refused to connect to {host} (HTTP {status}): {why}",
            provider=provider, hint="Check the proxy (HARVESTKIT_PROXY or proxy=).",
        )  # fmt: skip
    if "(100)" in message or "request too large" in message.lower():
        return ClientError(
            f"the request to {where} is too large to send: the cached {provider} session's cookies or headers "
            "are too big",
            provider=provider,
            hint=f"See `harvestkit cache show {provider}`; `harvestkit cache clear {provider}` and harvest again.",
        )
    return ConnectError(f"cannot reach {where}: {message}", provider=provider)
