"""Set-Cookie parsing (RFC 6265 5.2) and applying it to a record."""

from __future__ import annotations

import calendar
import logging

import pytest
from harvestkit.cache import (
    Cookie,
    CookieFormatError,
    SessionRecord,
    domain_match,
    parse_cookie_date,
    parse_set_cookie,
    parse_set_cookies,
)
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = 1_800_000_000.0
JUNE_9_2021 = float(calendar.timegm((2021, 6, 9, 10, 18, 14)))


@pytest.mark.parametrize(
    "text",
    [
        "Wed, 09 Jun 2021 10:18:14 GMT",  # RFC 1123
        "Wednesday, 09-Jun-21 10:18:14 GMT",  # RFC 850
        "Wed Jun  9 10:18:14 2021",  # asctime
        "Wed, 09-Jun-2021 10:18:14 GMT",  # dashes with a 4-digit year
        "09 Jun 2021 10:18:14",  # no weekday, no zone
        "wed, 9 june 2021 10:18:14 utc",  # case and long month
    ],
)
def test_cookie_dates_in_the_usual_variants(text):
    assert parse_cookie_date(text) == JUNE_9_2021


@pytest.mark.parametrize("text", ["", "tomorrow", "Wed, 31 Feb 2021 10:18:14 GMT", "Wed, 09 Jun 2021 25:00:00 GMT"])
def test_bad_cookie_dates_are_none(text):
    assert parse_cookie_date(text) is None


def test_two_digit_years_follow_the_rfc_window():
    assert parse_cookie_date("Thu, 01-Jan-70 00:00:01 GMT") == 1.0
    assert parse_cookie_date("Sat, 01-Jan-69 00:00:00 GMT") == float(calendar.timegm((2069, 1, 1, 0, 0, 0)))


def test_a_full_set_cookie():
    cookie = parse_set_cookie(
        "sid=abc=def; Domain=.Example.com; Path=/api; Expires=Wed, 09 Jun 2021 10:18:14 GMT; "
        "Secure; HttpOnly; SameSite=lax; Partitioned; Priority=High",
        "https://www.example.com/login",
        now=NOW,
    )
    assert cookie == Cookie("sid", "abc=def", "example.com", "/api", JUNE_9_2021, True, True, "Lax", False)


def test_without_domain_the_cookie_is_host_only_with_the_default_path():
    cookie = parse_set_cookie("a=1", "https://WWW.example.com/app/page?q=1", now=NOW)
    assert (cookie.domain, cookie.host_only, cookie.path) == ("www.example.com", True, "/app")
    assert cookie.expires is None and not cookie.secure and cookie.same_site is None
    assert parse_set_cookie("a=1; Path=relative", "https://h.example/x/y/z", now=NOW).path == "/x/y"
    assert parse_set_cookie("a=1", "h.example", now=NOW).path == "/"


def test_max_age_wins_over_expires_in_any_order():
    expires = "Expires=Wed, 09 Jun 2021 10:18:14 GMT"
    for header in (f"a=1; Max-Age=60; {expires}", f"a=1; {expires}; Max-Age=60"):
        assert parse_set_cookie(header, "example.com", now=NOW).expires == NOW + 60
    assert parse_set_cookie("a=1; Max-Age=soon", "example.com", now=NOW).expires is None
    # an invalid Expires is ignored, not a reset of an earlier valid one
    assert parse_set_cookie("a=1; Expires=Wed, 09 Jun 2021 10:18:14 GMT; Expires=bogus", "e.com").expires == JUNE_9_2021


def test_deletion_by_max_age_zero_or_past_expires_removes_the_cookie_on_merge():
    record = SessionRecord(
        site="s", cookies=[Cookie("a", "1", "example.com", host_only=True), Cookie("b", "2", "example.com")]
    )
    headers = ["a=; Max-Age=0", "b=gone; Domain=example.com; Expires=Thu, 01 Jan 1970 00:00:00 GMT"]
    deletions = parse_set_cookies(headers, "example.com", now=NOW)
    assert [c.is_expired(NOW) for c in deletions] == [True, True]
    assert record.merge_cookies(deletions, now=NOW).cookies == []


def test_set_cookie_replaces_a_cookie_in_the_record():
    record = SessionRecord(site="s", cookies=[Cookie("sid", "old", "example.com", host_only=True)])
    merged = record.merge_cookies(parse_set_cookies("sid=new; Max-Age=3600", "https://example.com/", now=NOW), now=NOW)
    assert [(c.name, c.value, c.expires) for c in merged.cookies] == [("sid", "new", NOW + 3600)]
    assert merged.cookies_for("example.com", now=NOW) == {"sid": "new"}


@pytest.mark.parametrize(
    "header, request_host",
    [
        ("a=1; Domain=other.com", "www.example.com"),
        ("a=1; Domain=www.example.com", "example.com"),
        ("a=1; Domain=com", "example.com"),
        ("a=1; Domain=0.0.1", "127.0.0.1"),
        ("novalue", "example.com"),
        ("=1", "example.com"),
    ],
)
def test_invalid_cookies_raise_and_are_skipped_in_bulk(header, request_host, caplog):
    with pytest.raises(CookieFormatError):
        parse_set_cookie(header, request_host)
    with caplog.at_level(logging.DEBUG, logger="harvestkit.cache.setcookie"):
        assert parse_set_cookies([header, "ok=1"], request_host) == [Cookie("ok", "1", request_host, host_only=True)]
    assert "ignored" in caplog.text


def test_rejected_cookie_values_never_reach_the_log(caplog):
    with caplog.at_level(logging.DEBUG):
        parse_set_cookies(["sid=very-secret-value-123; Domain=evil.example"], "www.example.com")
    assert caplog.text and "very-secret-value-123" not in caplog.text


def test_domain_match_rules():
    assert domain_match("example.com", "example.com")
    assert domain_match("a.b.example.com", ".example.com")
    assert not domain_match("notexample.com", "example.com")
    assert not domain_match("1.2.3.4", "2.3.4")
    assert domain_match("1.2.3.4", "1.2.3.4")


def test_quoted_values_and_whitespace_are_kept_like_browsers():
    cookie = parse_set_cookie('  q = "a b" ;  secure ', "example.com")
    assert (cookie.name, cookie.value, cookie.secure) == ("q", '"a b"', True)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_header_parses_or_raises_cookie_format_error(header):
    try:
        cookie = parse_set_cookie(header, "https://www.example.com/a/b", now=NOW)
    except CookieFormatError:
        return
    assert cookie.name and cookie.matches_host("www.example.com")
