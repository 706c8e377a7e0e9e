"""Cookie import/export: Netscape cookies.txt, extension JSON, CDP cookies."""

from __future__ import annotations

import dataclasses
import json
import textwrap

import pytest
from harvestkit.cache import (
    FORMATS,
    AuthCache,
    Cookie,
    CookieFormatError,
    detect_cookie_format,
    dump_cdp_cookies,
    dump_cookies,
    dump_extension_cookies,
    dump_netscape_cookies,
    parse_cdp_cookies,
    parse_cookies,
    parse_extension_cookies,
    parse_netscape_cookies,
)
from hypothesis import given, settings
from hypothesis import strategies as st

COOKIES_TXT = (
    "# Netscape HTTP Cookie File\n"
    "# https://curl.se/docs/http-cookies.html\n"
    "\n"
    ".cerebras.ai\tTRUE\t/\tTRUE\t1900000000\tsession\tabc123\n"
    "#HttpOnly_inference.cerebras.ai\tFALSE\t/api\tTRUE\t0\tcf_clearance\tv=1\twith\ttabs\n"
    "example.com\tTRUE\t/\tFALSE\t1900000000\tnodot\tx\n"
    "   # an indented comment\n"
    "example.com\tFALSE\t/\tFALSE\t1900000000\tempty\t\r\n"
)

EXTENSION_JSON = textwrap.dedent(
    """\
    [
    {
        "domain": ".playground.ai.cloudflare.com",
        "expirationDate": 1900000000.5,
        "hostOnly": false,
        "httpOnly": true,
        "name": "__cf_bm",
        "path": "/",
        "sameSite": "no_restriction",
        "secure": true,
        "session": false,
        "storeId": "0",
        "value": "bm-value",
        "id": 1
    },
    {
        "domain": "playground.ai.cloudflare.com",
        "hostOnly": true,
        "httpOnly": false,
        "name": "pref",
        "path": "/",
        "sameSite": "lax",
        "secure": false,
        "session": true,
        "storeId": "0",
        "value": "dark"
    }
    ]
    """
)

CDP_COOKIES = [
    {
        "name": "cf_clearance",
        "value": "clear",
        "domain": ".cerebras.ai",
        "path": "/",
        "expires": 1900000000.25,
        "size": 17,
        "httpOnly": True,
        "secure": True,
        "session": False,
        "sameSite": "None",
        "priority": "Medium",
        "sameParty": False,
        "sourceScheme": "Secure",
        "sourcePort": 443,
        "partitionKey": {"topLevelSite": "https://cerebras.ai", "hasCrossSiteAncestor": False},
    },
    {
        "name": "host",
        "value": "h",
        "domain": "inference.cerebras.ai",
        "path": "/",
        "expires": -1,
        "size": 5,
        "httpOnly": False,
        "secure": False,
        "session": True,
        "priority": "Medium",
        "sameParty": False,
        "sourceScheme": "NonSecure",
        "sourcePort": 80,
    },
]


def test_netscape_parse_handles_httponly_session_comments_and_tabs_in_values():
    cookies = parse_netscape_cookies(COOKIES_TXT)
    assert cookies == [
        Cookie("session", "abc123", "cerebras.ai", "/", 1900000000.0, True, False, None, False),
        Cookie("cf_clearance", "v=1\twith\ttabs", "inference.cerebras.ai", "/api", None, True, True, None, True),
        Cookie("nodot", "x", "example.com", "/", 1900000000.0, False, False, None, False),
        Cookie("empty", "", "example.com", "/", 1900000000.0, False, False, None, True),
    ]


def test_netscape_round_trip_writes_the_dot_with_include_subdomains():
    cookies = parse_netscape_cookies(COOKIES_TXT)
    text = dump_netscape_cookies(cookies)
    assert parse_netscape_cookies(text) == cookies
    assert "#HttpOnly_inference.cerebras.ai\tFALSE\t/api\tTRUE\t0\tcf_clearance" in text
    assert "\n.example.com\tTRUE\t/\tFALSE\t1900000000\tnodot\tx\n" in text


@pytest.mark.parametrize(
    "line, message",
    [
        ("example.com\tTRUE\t/\tFALSE\t0\tname-only", "7 tab-separated fields, found 6"),
        ("example.com\tYES\t/\tFALSE\t0\tn\tv", "TRUE or FALSE"),
        (".example.com\tFALSE\t/\tFALSE\t0\tn\tv", "include-subdomains is FALSE"),
        ("example.com\tTRUE\t/\tFALSE\tsoon\tn\tv", "expires field must be a number"),
        ("example.com\tTRUE\t/\tFALSE\t0\t\tv", "name must not be empty"),
    ],
)
def test_netscape_errors_name_the_line(line, message):
    text = "# Netscape HTTP Cookie File\n\nexample.com\tTRUE\t/\tFALSE\t0\tok\tv\n" + line + "\n"
    with pytest.raises(CookieFormatError, match=message) as info:
        parse_netscape_cookies(text)
    assert info.value.line == 4 and "line 4" in str(info.value)


def test_extension_json_parse_and_round_trip():
    cookies = parse_extension_cookies(EXTENSION_JSON)
    assert cookies == [
        Cookie("__cf_bm", "bm-value", "playground.ai.cloudflare.com", "/", 1900000000.5, True, True, "None", False),
        Cookie("pref", "dark", "playground.ai.cloudflare.com", "/", None, False, False, "Lax", True),
    ]
    exported = json.loads(dump_extension_cookies(cookies))
    assert exported[0]["domain"] == ".playground.ai.cloudflare.com" and exported[0]["sameSite"] == "no_restriction"
    assert exported[1]["session"] is True and "expirationDate" not in exported[1]
    assert parse_extension_cookies(json.dumps(exported)) == cookies


def test_cdp_parse_and_round_trip():
    cookies = parse_cdp_cookies(CDP_COOKIES)
    assert cookies == [
        Cookie("cf_clearance", "clear", "cerebras.ai", "/", 1900000000.25, True, True, "None", False),
        Cookie("host", "h", "inference.cerebras.ai", "/", None, False, False, None, True),
    ]
    assert parse_cdp_cookies(json.dumps(CDP_COOKIES)) == cookies
    assert parse_cdp_cookies({"cookies": CDP_COOKIES}) == cookies
    exported = dump_cdp_cookies(cookies)
    assert exported[1]["expires"] == -1 and exported[1]["session"] and exported[0]["size"] == 17
    assert parse_cdp_cookies(exported) == cookies


def test_format_detection_and_any_format_round_trips():
    assert detect_cookie_format(COOKIES_TXT) == "netscape"
    assert detect_cookie_format(EXTENSION_JSON) == "extension"
    assert detect_cookie_format(json.dumps(CDP_COOKIES)) == "cdp"
    cookies = parse_cdp_cookies(CDP_COOKIES)
    for fmt in ("extension", "cdp"):
        assert parse_cookies(dump_cookies(cookies, fmt)) == cookies
    with pytest.raises(ValueError):
        dump_cookies(cookies, "yaml")


def test_json_errors_name_the_line_of_the_bad_cookie():
    bad = EXTENSION_JSON.replace('"secure": false', '"secure": "nope"')
    with pytest.raises(CookieFormatError, match=r"line 16.*cookie #2.*secure") as info:
        parse_extension_cookies(bad)
    assert info.value.line == 16
    with pytest.raises(CookieFormatError, match="line 3") as info:
        parse_extension_cookies('[\n{"name": "a",\n "value": }]')
    with pytest.raises(CookieFormatError, match="JSON array"):
        parse_cdp_cookies('"just a string"')
    with pytest.raises(CookieFormatError, match=r"cookie #1.*sameSite"):
        parse_cdp_cookies([{"name": "a", "value": "b", "domain": "e.com", "sameSite": "Sometimes"}])
    with pytest.raises(CookieFormatError, match=r"cookie #1.*expirationDate"):
        parse_extension_cookies('[{"name": "a", "value": "b", "domain": "e.com", "session": false}]')
    with pytest.raises(CookieFormatError, match=r"line 2: cookie #2: the cookie must be an object"):
        parse_extension_cookies('[{"name": "a", "value": "b", "domain": "e.com"},\n 2]')


def test_cookie_file_errors_never_contain_values():
    with pytest.raises(CookieFormatError) as info:
        parse_netscape_cookies("example.com\tMAYBE\t/\tFALSE\t0\tsid\tsuper-secret-value\n")
    assert "super-secret-value" not in str(info.value)


def test_cache_import_and_export(tmp_path):
    cache = AuthCache(tmp_path / "cache")
    record = cache.import_cookies("cerebras", COOKIES_TXT)
    assert record.source == "import" and len(record.cookies) == 4
    assert cache.get_sync("cerebras").cookies == parse_netscape_cookies(COOKIES_TXT)
    cache.import_cookies("cerebras", json.dumps(CDP_COOKIES), fmt="cdp")
    names = sorted(c.name for c in cache.get_sync("cerebras").cookies)
    assert names == ["cf_clearance", "cf_clearance", "empty", "host", "nodot", "session"]
    cache.import_cookies("cerebras", json.dumps(CDP_COOKIES), replace=True)
    assert parse_cookies(cache.export_cookies("cerebras", "cdp")) == parse_cdp_cookies(CDP_COOKIES)
    assert "cf_clearance\tclear" in cache.export_cookies("cerebras")


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
cookies_strategy = st.builds(
    Cookie,
    name=st.from_regex(r"[A-Za-z0-9_.!~-]{1,20}", fullmatch=True),
    value=st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=40),
    domain=st.lists(_label, min_size=2, max_size=4).map(".".join),
    path=st.from_regex(r"/[a-z0-9/_-]{0,15}", fullmatch=True),
    expires=st.none() | st.integers(1, 4_000_000_000).map(float),
    secure=st.booleans(),
    http_only=st.booleans(),
    same_site=st.sampled_from([None, "Strict", "Lax", "None"]),
    host_only=st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(cookies_strategy, max_size=6))
def test_every_format_round_trips_any_cookies(cookies):
    assert parse_extension_cookies(dump_extension_cookies(cookies)) == cookies
    assert parse_cdp_cookies(json.dumps(dump_cdp_cookies(cookies))) == cookies
    without_same_site = [dataclasses.replace(c, same_site=None) for c in cookies]  # cookies.txt cannot say it
    assert parse_netscape_cookies(dump_netscape_cookies(cookies)) == without_same_site


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300), st.sampled_from(FORMATS))
def test_any_input_parses_or_raises_cookie_format_error(text, fmt):
    try:
        parse_cookies(text, fmt)
    except CookieFormatError as exc:
        assert exc.fmt == fmt


def test_mozilla_cookie_jar_files_with_session_cookies_import(tmp_path) -> None:
    import http.cookiejar

    from harvestkit.cache import parse_netscape_cookies

    jar = http.cookiejar.MozillaCookieJar(str(tmp_path / "cookies.txt"))
    jar.set_cookie(http.cookiejar.Cookie(0, "sid", "abc", None, False, ".cerebras.ai", True, True, "/", True,
                                         True, None, True, None, None, {}))  # fmt: skip
    jar.save(ignore_discard=True)
    (cookie,) = parse_netscape_cookies((tmp_path / "cookies.txt").read_text())
    assert (cookie.name, cookie.domain, cookie.host_only, cookie.expires) == ("sid", "cerebras.ai", False, None)
