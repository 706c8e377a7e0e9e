"""What the sandbox keeps on each request while serving it (typed aiohttp request keys)."""
from __future__ import annotations

from aiohttp import web

CLIENT_CLASS = web.RequestKey("client_class", str | None)  # "chrome" / "other", from the hello
TUNNEL_ID = web.RequestKey("tunnel_id", int | None)
ROUTE = web.RequestKey("route", str)  # the fault route this request counts against
NOTE = web.RequestKey("note", str)  # why it was refused or failed
OUTCOME = web.RequestKey("outcome", str)  # how a stream ended
H2_CLASS = web.RequestKey("h2_class", str | None)  # "chrome" / "other" from the HTTP/2 preface; None on 1.1
H2_MISMATCH = web.RequestKey("h2_mismatch", str | None)  # why the HTTP/2 fingerprint is not Chrome's
