"""The sites harvestkit harvests, as recipes: adding one is adding an entry here.

- cerebras: the Auth.js session of inference.cerebras.ai yields the demo API key (from the session,
  or from the `GetMyDemoApiKey` GraphQL call to inference.cerebras.ai or chat.cerebras.ai). A signed-out
  profile cannot be harvested headless (`harvestkit login cerebras` signs it in once). The session's
  `expires` is the session's, not the key's: the key's lifetime is unknown (`api_key_expires_at`
  stays None) and the API's 401 is what says it has expired.
- cloudflare: the playground behind Cloudflare's challenge; what is harvested is the clearance
  (`cf_clearance`, when a challenge was passed) and `__cf_bm`, bound to this browser's user agent.
"""
from __future__ import annotations

import json

from .recipe import Challenge, InPageFetch, Recipe, Sniff

CLOUDFLARE_CHALLENGE = Challenge(
    titles=("Just a moment...", "Attention Required"),
    markers=("cf-please-wait", "challenge-platform", "cf_chl_opt"),
    interactive=('cType: "interactive"', "cType: 'interactive'", "cf-turnstile"),
    blocked=("you have been blocked",),
)

_GRAPHQL_KEY = json.dumps(
    {
        "operationName": "GetMyDemoApiKey",
        "variables": {},
        "query": "query GetMyDemoApiKey {\n  GetMyDemoApiKey\n}",
    }
)

CEREBRAS = Recipe(
    name="cerebras",
    start_url="https://inference.cerebras.ai/",
    cookie_domains=("cerebras.ai",),
    ready="document.readyState === 'complete'",
    challenge=CLOUDFLARE_CHALLENGE,
    essential_cookies=("__Secure-authjs.session-token",),
    required_cookies=("__Secure-authjs.session-token",),
    sniffs=(
        Sniff(
            url="https://inference.cerebras.ai/api/auth/session",
            captures={"api_key": "user.demoApiKey", "session_expires": "expires"},
            signed_in="user",
            fetch=InPageFetch(),
        ),
        Sniff(
            url="https://inference.cerebras.ai/api/graphql",
            method="POST",
            post_data_contains="GetMyDemoApiKey",
            captures={"api_key": "data.GetMyDemoApiKey"},
            fetch=InPageFetch(method="POST", body=_GRAPHQL_KEY, headers={"content-type": "application/json"}),
        ),
        Sniff(  # the same key, served by chat.cerebras.ai too (the page may ask either host)
            url="https://chat.cerebras.ai/api/graphql",
            method="POST",
            post_data_contains="GetMyDemoApiKey",
            captures={"api_key": "data.GetMyDemoApiKey"},
        ),
    ),
    required=("api_key",),
    needs_sign_in=True,
    extra_hosts=("api.cerebras.ai", "chat.cerebras.ai"),
)

CLOUDFLARE = Recipe(
    name="cloudflare",
    start_url="https://playground.ai.cloudflare.com/",
    cookie_domains=("ai.cloudflare.com",),
    ready="document.readyState === 'complete'",
    challenge=CLOUDFLARE_CHALLENGE,
    essential_cookies=("cf_clearance", "__cf_bm"),
    required_cookies=("__cf_bm",),
)

SITES: dict[str, Recipe] = {recipe.name: recipe for recipe in (CEREBRAS, CLOUDFLARE)}


def recipe_for(site: str) -> Recipe:
    """The recipe of `site`; ValueError naming the known sites otherwise."""
    try:
        return SITES[site]
    except KeyError:
        raise ValueError(f"unknown site {site!r}; known sites: {', '.join(sorted(SITES))}") from None
