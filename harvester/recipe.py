"""What a site recipe says, as data: where to go, when the page is done, what to capture.

The harvest engine reads these fields and nothing else about a site; the recipes themselves are in
`harvestkit.harvester.sites`. All URLs, names and markers are matched literally (no regexes).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from harvestkit.cache import Cookie, domain_match

HINT_HEADERS = ("sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform")


@dataclass(frozen=True)
class Challenge:
    """How a bot check's page looks, and how to tell one that needs a person or refused us."""

    titles: tuple[str, ...]  # a title starting with one of these is a challenge page
    markers: tuple[str, ...]  # ... as is a page whose HTML contains two of these (normal pages
    # behind Cloudflare may carry one, e.g. a challenge-platform script)
    interactive: tuple[str, ...] = ()  # in a challenge page's HTML: it wants a click or a puzzle
    blocked: tuple[str, ...] = ()  # in its visible text: it refused the browser for good


@dataclass(frozen=True)
class InPageFetch:
    """A request the harvester makes from the page itself when the page did not make it."""

    method: str = "GET"
    body: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)  # identity: a recipe's sniffs are distinct objects
class Sniff:
    """A response the page fetches whose JSON body holds something to capture.

    `captures` maps a name to a dotted path in the JSON body ("user.demoApiKey"): "api_key" and
    "api_key_expires_at" (an epoch or ISO 8601 time) fill the record's fields, any other name goes
    to `record.extra`. `signed_in` is a path that is truthy exactly when the user is signed in.
    `fetch` lets the harvester request it itself, once, if the page has not.
    """

    url: str  # the URL without its query
    method: str = "GET"
    post_data_contains: str | None = None
    captures: Mapping[str, str] = field(default_factory=dict)
    signed_in: str | None = None
    fetch: InPageFetch | None = None

    def matches(self, url: str, method: str, post_data: str | None) -> bool:
        return (
            url.split("?", 1)[0].split("#", 1)[0] == self.url
            and method.upper() == self.method
            and (self.post_data_contains is None or self.post_data_contains in (post_data or ""))
        )


@dataclass(frozen=True)
class Recipe:
    """One site: how to harvest it with a browser."""

    name: str
    start_url: str
    cookie_domains: tuple[str, ...]  # cookies of these domains and their subdomains are kept
    ready: str  # a JavaScript expression, true once the (non-challenge) page is usable
    challenge: Challenge
    essential_cookies: tuple[str, ...]  # their earliest expiry is the session's (when present)
    required_cookies: tuple[str, ...]  # the harvest waits until the browser holds these
    sniffs: tuple[Sniff, ...] = ()
    required: tuple[str, ...] = ()  # capture names the harvest waits for ("api_key")
    needs_sign_in: bool = False  # a sniff's `signed_in` must be true; signed out is an error
    extra_hosts: tuple[str, ...] = ()  # other hosts the page talks to (for certificate pins)
    copy_headers: tuple[str, ...] = ("user-agent", *HINT_HEADERS, "accept-language")
    fallback_after: float = 1.0  # seconds after the page is ready before fetching sniffs itself

    @property
    def host(self) -> str:
        return urlsplit(self.start_url).hostname or ""

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every HTTPS host the harvest reaches."""
        return (self.host, *self.extra_hosts)

    def keeps(self, cookie: Cookie) -> bool:
        """Whether a browser cookie belongs to this site."""
        return any(domain_match(cookie.domain, domain) for domain in self.cookie_domains)

    def sniff_for(self, url: str, method: str, post_data: str | None) -> Sniff | None:
        return next((s for s in self.sniffs if s.matches(url, method, post_data)), None)

    def probe_script(self) -> str:
        """JavaScript giving the page's state as JSON: ready, challenge kind, title, URL."""
        spec = {
            "titles": self.challenge.titles,
            "markers": self.challenge.markers,
            "interactive": self.challenge.interactive,
            "blocked": self.challenge.blocked,
        }
        return (
            "(() => { const spec = " + json.dumps(spec) + ";\n"
            "const html = document.documentElement ? document.documentElement.outerHTML : '';\n"
            "const title = document.title || '';\n"
            "const text = document.body ? document.body.innerText : '';\n"
            "let challenge = null;\n"
            "const marked = spec.markers.filter((m) => html.includes(m)).length >= 2;\n"
            "if (spec.titles.some((t) => title.startsWith(t)) || marked) {\n"
            "  challenge = spec.blocked.some((m) => text.includes(m)) ? 'blocked'\n"
            "    : spec.interactive.some((m) => html.includes(m)) ? 'interactive' : 'managed';\n"
            "}\n"
            "let ready = false; try { ready = !!(" + self.ready + "); } catch (e) {}\n"
            "return JSON.stringify({ready, challenge, title, url: location.href,"
            " loaded: document.readyState === 'complete'}); })()"
        )


def json_path(data: Any, path: str) -> Any:
    """The value at a dotted path of decoded JSON, or None."""
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data
