"""inference.cerebras.ai: the web demo, signed in with Auth.js, that hands out demo API keys."""
from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from . import keys
from .accounts import SANDBOX_USER, Accounts, Credential
from .cerebras_api import forced_error
from .cloudflare_front import CloudflareFront
from .cookies import delete_cookie, set_cookie
from .state import SandboxState

HOST = "inference.cerebras.ai"
SESSION_COOKIE = "__Secure-authjs.session-token"
CSRF_COOKIE = "__Host-authjs.csrf-token"
CALLBACK_COOKIE = "__Secure-authjs.callback-url"
SESSION_DOMAIN = ".cerebras.ai"

HOME_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Cerebras Inference</title></head>
<body class="loading">
<main id="app"><p id="status">Loading&hellip;</p></main>
<script>
document.cookie = "cookieyes-consent=consentid:sandbox,consent:yes,action:yes; path=/; max-age=31536000; secure; samesite=lax";
async function start() {
  const session = await (await fetch("/api/auth/session")).json();
  const status = document.getElementById("status");
  if (session && session.user) {
    const gql = await fetch("/api/graphql", {method: "POST", headers: {"content-type": "application/json"},
      body: JSON.stringify({operationName: "GetMyDemoApiKey", variables: {},
                            query: "query GetMyDemoApiKey {\\n  GetMyDemoApiKey\\n}"})});
    const key = (await gql.json()).data.GetMyDemoApiKey;
    await fetch("https://api.cerebras.ai/v1/tcp_warming", {headers: {
      "Authorization": "Bearer " + key, "x-stainless-lang": "js",
      "x-stainless-package-version": "1.5.0", "x-stainless-runtime": "browser:chrome"}});
    status.textContent = "Signed in as " + session.user.email;
    document.body.dataset.state = "signed-in";
  } else {
    status.innerHTML = '<a id="signin" href="/api/auth/signin?callbackUrl=%2F">Sign in</a> to chat';
    document.body.dataset.state = "signed-out";
  }
  document.body.classList.remove("loading");
}
start();
</script></body></html>
"""

SIGNIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in | Cerebras</title></head>
<body><h1>Sign in to Cerebras</h1>{error}
<form id="signin" method="post" action="/api/auth/callback/credentials">
<input type="hidden" name="csrfToken" value="{csrf}">
<input type="hidden" name="callbackUrl" value="{callback}">
<label>Email <input id="email" name="email" type="email" autocomplete="username"></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password"></label>
<button id="submit" type="submit">Sign in</button>
</form></body></html>
"""


def safe_callback(url: str | None) -> str:
    """Only same-site paths: Auth.js refuses open redirects too."""
    if not url:
        return "/"
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != HOST:
        return "/"
    return parts.path or "/"


def page_view(request: web.Request) -> bool:
    """What Cloudflare challenges on this host: page views, not the Auth.js and GraphQL API."""
    return request.method == "GET" and not request.path.startswith("/api/")


class CerebrasWeb:
    """Routes of inference.cerebras.ai, behind Cloudflare's challenge (page views only)."""

    def __init__(self, state: SandboxState, accounts: Accounts) -> None:
        self.state, self.accounts = state, accounts
        self.front = CloudflareFront(state, host=HOST, cookie_domain=SESSION_DOMAIN, gate=page_view)

    def app(self) -> web.Application:
        app = web.Application()
        self.front.install(app, cf_bm=False)
        app.router.add_get("/", self.home)
        app.router.add_get("/api/auth/session", self.session)
        app.router.add_get("/api/auth/csrf", self.csrf)
        app.router.add_get("/api/auth/signin", self.signin_page)
        app.router.add_post("/api/auth/callback/credentials", self.signin)
        app.router.add_post("/api/auth/signout", self.signout)
        app.router.add_post("/api/graphql", self.graphql)
        return app

    def _set_session(self, response: web.StreamResponse, token: str, expires: float) -> None:
        set_cookie(response, SESSION_COOKIE, token, expires=expires, domain=SESSION_DOMAIN)

    def _signed_in(
        self, request: web.Request, response_for_refresh: web.StreamResponse | None = None
    ) -> Credential | None:
        """The request's live session; re-set (or rotated) on `response_for_refresh` if given."""
        credential = self.accounts.session(request.cookies.get(SESSION_COOKIE))
        if credential is not None and response_for_refresh is not None:
            credential = self.accounts.touch(credential)
            self._set_session(response_for_refresh, credential.value, credential.expires_at)
        return credential

    def _csrf_pair(self, request: web.Request, response: web.StreamResponse) -> str:
        existing = request.cookies.get(CSRF_COOKIE, "")
        token = existing.split("|", 1)[0]
        if self.accounts.csrf_valid(existing, token):
            return token
        token, cookie = self.accounts.csrf_cookie()
        set_cookie(response, CSRF_COOKIE, cookie)
        return token

    # -- pages ------------------------------------------------------------------------------
    async def home(self, request: web.Request) -> web.Response:
        page = HOME_PAGE
        if self.state.knobs.key_host != HOST:  # the key from chat.cerebras.ai's GraphQL, cross-site
            page = page.replace(
                'fetch("/api/graphql", {method: "POST",',
                f'fetch("https://{self.state.knobs.key_host}/api/graphql", {{method: "POST", credentials: "include",',
            )
        return web.Response(text=page, content_type="text/html")

    async def signin_page(self, request: web.Request) -> web.Response:
        callback = safe_callback(request.query.get("callbackUrl"))
        if self._signed_in(request):
            raise web.HTTPFound(callback)
        response = web.Response(content_type="text/html")
        csrf = self._csrf_pair(request, response)
        error = ""
        if request.query.get("error"):
            error = '<p id="error" role="alert">Sign in failed. Check the details you provided.</p>'
        response.text = SIGNIN_PAGE.format(
            error=error, csrf=html.escape(csrf), callback=html.escape(callback)
        )
        return response

    # -- Auth.js endpoints ----------------------------------------------------------------------
    async def csrf(self, request: web.Request) -> web.Response:
        response = web.Response(content_type="application/json")
        response.text = json.dumps({"csrfToken": self._csrf_pair(request, response)})
        return response

    async def session(self, request: web.Request) -> web.Response:
        request[keys.ROUTE] = "cerebras.session"
        fault = self.state.take_fault("cerebras.session")
        if fault is not None and fault.status:
            return forced_error(fault)
        response = web.Response(content_type="application/json")
        credential = self._signed_in(request, response)
        if credential is None:
            response.text = "null"
            return response
        key = self.accounts.demo_key(credential.email)
        expires = datetime.fromtimestamp(credential.expires_at, UTC)
        body = {
            "user": dict(SANDBOX_USER, demoApiKey=key.value) if self.state.knobs.session_has_key else dict(SANDBOX_USER),
            "expires": expires.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        response.text = json.dumps(body)
        return response

    async def signin(self, request: web.Request) -> web.Response:
        form = await request.post()
        callback = safe_callback(str(form.get("callbackUrl") or "/"))
        if not self.accounts.csrf_valid(request.cookies.get(CSRF_COOKIE), str(form.get("csrfToken", ""))):
            raise web.HTTPFound("/api/auth/signin?error=MissingCSRF&callbackUrl=" + quote(callback))
        if not self.accounts.check_password(str(form.get("email", "")), str(form.get("password", ""))):
            raise web.HTTPFound("/api/auth/signin?error=CredentialsSignin&callbackUrl=" + quote(callback))
        credential = self.accounts.new_session(str(form["email"]).strip().lower())
        response = web.HTTPFound(callback)
        self._set_session(response, credential.value, credential.expires_at)
        set_cookie(response, CALLBACK_COOKIE, quote("https://" + HOST + callback, safe=""))
        raise response

    async def signout(self, request: web.Request) -> web.Response:
        self.accounts.end_session(request.cookies.get(SESSION_COOKIE))
        response = web.HTTPFound("/")
        delete_cookie(response, SESSION_COOKIE, domain=SESSION_DOMAIN)
        raise response

    async def graphql(self, request: web.Request) -> web.Response:
        try:
            body: Any = json.loads(await request.read())
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("operationName") != "GetMyDemoApiKey":
            return web.json_response({"errors": [{"message": "Unknown operation"}]}, status=400)
        response = web.Response(content_type="application/json")
        credential = self._signed_in(request, response)
        if credential is None:
            response.text = json.dumps(
                {"errors": [{"message": "Not authenticated", "extensions": {"code": "UNAUTHENTICATED"}}], "data": None}
            )
            return response
        response.text = json.dumps({"data": {"GetMyDemoApiKey": self.accounts.demo_key(credential.email).value}})
        return response
