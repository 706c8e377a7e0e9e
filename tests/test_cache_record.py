"""SessionRecord and Cookie: serialisation, validation, cookie jars, merging, redaction."""

from __future__ import annotations

import json
import re

import pytest
from harvestkit.cache import (
    CacheCorruptError,
    CacheSchemaError,
    Cookie,
    SessionRecord,
    redact,
    session_expires_at,
)

NOW = 1_800_000_000.0
API_KEY = "csk-2n9v8x7c6b5n4m3l2k1j0h9g8f7d6s5a"
SECRET = "s3cr3t-cookie-value-0123456789"


def full_record() -> SessionRecord:
    return SessionRecord(
        site="cerebras",
        profile="work",
        harvested_at=NOW - 60,
        expires_at=NOW + 3600,
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36",
        client_hints={"sec-ch-ua": '"Chromium";v="131"', "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": '"Linux"'},
        essential_cookies=["session"],
        generation="agents",
        cookies=[
            Cookie("session", SECRET, ".cerebras.ai", "/", NOW + 3600, True, True, "Lax"),
            Cookie("cf_clearance", "x" * 40, "inference.cerebras.ai", "/api", None, True, False, "None", True),
        ],
        api_key=API_KEY,
        api_key_expires_at=NOW + 7200,
        proxy="http://user:proxy-password-123@proxy.example:8080",
        source="login",
        extra={"transport": "websocket-v2", "nested": {"n": 1}},
    )


def test_to_dict_from_dict_round_trips_every_field():
    record = full_record()
    back = SessionRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert back == record
    assert back.cookies[0].domain == "cerebras.ai" and not back.cookies[0].host_only
    assert back.cookies[1].host_only and back.cookies[1].expires is None


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.pop("harvested_at"), "harvested_at"),
        (lambda d: d.update(harvested_at="yesterday"), "harvested_at"),
        (lambda d: d.update(cookies={}), "cookies"),
        (lambda d: d["cookies"][1].update(secure="yes"), "cookies[1].secure"),
        (lambda d: d["cookies"][0].pop("value"), "cookies[0].value"),
        (lambda d: d.update(client_hints={"sec-ch-ua": 1}), "client_hints"),
        (lambda d: d.update(api_key=12345), "api_key"),
        (lambda d: d.update(source="stolen"), "source"),
        (lambda d: d.update(site="../etc"), "site"),
        (lambda d: d.update(schema_version="1"), "schema_version"),
        (lambda d: d.update(expires_at=True), "expires_at"),
    ],
)
def test_from_dict_rejects_bad_data_naming_the_field_not_the_value(mutate, field):
    data = full_record().to_dict()
    mutate(data)
    with pytest.raises(CacheCorruptError, match=re.escape(field)) as info:
        SessionRecord.from_dict(data)
    assert API_KEY not in str(info.value) and SECRET not in str(info.value)


def test_from_dict_newer_schema_is_a_schema_error_naming_both_versions():
    data = full_record().to_dict() | {"schema_version": 7}
    with pytest.raises(CacheSchemaError, match=r"version 7.*up to version 1"):
        SessionRecord.from_dict(data)


def test_invalid_names_are_refused():
    with pytest.raises(ValueError):
        SessionRecord(site="a/b")
    with pytest.raises(ValueError):
        SessionRecord(site="ok", profile="x.refresh")
    with pytest.raises(ValueError):
        SessionRecord(site="ok\n")


def test_redact_masks_short_secrets_and_shows_at_most_four_at_each_end():
    assert redact("") == ""
    assert redact(None) == ""
    assert redact("short") == "****"
    assert redact("elevenchars") == "****"
    assert redact("twelve-chars") == "tw...rs"
    assert redact(API_KEY) == "csk-...6s5a"


def test_reprs_and_redacted_never_show_secrets():
    record = full_record()
    shown = [repr(record), repr(record.cookies), json.dumps(record.redacted()), str(record.cookies[0])]
    for text in shown:
        assert API_KEY not in text and SECRET not in text and "proxy-password-123" not in text
    redacted = record.redacted()
    assert redacted["api_key"] == "csk-...6s5a"
    assert redacted["cookies"][0]["value"] == redact(SECRET)
    assert redacted["proxy"] == "http://user:****@proxy.example:8080"
    assert record.api_key == API_KEY  # redacted() does not touch the record


def test_cookies_for_applies_domain_matching_and_expiry():
    record = SessionRecord(
        site="s",
        cookies=[
            Cookie("dom", "1", ".example.com"),
            Cookie("nodot", "2", "example.com"),
            Cookie("host", "3", "www.example.com", host_only=True),
            Cookie("gone", "4", "example.com", expires=NOW - 1),
            Cookie("later", "5", "example.com", expires=NOW + 1),
            Cookie("other", "6", "example.org"),
        ],
    )
    assert record.cookies_for("example.com", now=NOW) == {"dom": "1", "nodot": "2", "later": "5"}
    assert record.cookies_for("api.example.com", now=NOW) == {"dom": "1", "nodot": "2", "later": "5"}
    assert record.cookies_for("WWW.Example.com:443", now=NOW) == {"dom": "1", "nodot": "2", "host": "3", "later": "5"}
    assert record.cookies_for("badexample.com", now=NOW) == {}


def test_cookie_jar_with_a_url_applies_path_and_secure():
    record = SessionRecord(
        site="s",
        cookies=[
            Cookie("root", "r", "example.com"),
            Cookie("api", "a", "example.com", path="/api"),
            Cookie("sec", "s", "example.com", secure=True),
            Cookie("root", "more-specific", "api.example.com", path="/api/v1"),
        ],
    )
    assert record.cookie_jar("https://example.com/api/chat", now=NOW) == {"root": "r", "api": "a", "sec": "s"}
    assert record.cookie_jar("http://example.com/apis", now=NOW) == {"root": "r"}
    assert record.cookie_jar("https://api.example.com/api/v1/x", now=NOW)["root"] == "more-specific"
    assert record.cookie_jar("api.example.com", now=NOW)["root"] == "more-specific"


def test_merge_cookies_replaces_by_name_domain_path_and_deletes_expired():
    old = SessionRecord(
        site="s",
        cookies=[
            Cookie("a", "old", "example.com"),
            Cookie("a", "other-path", "example.com", path="/x"),
            Cookie("b", "keep", "example.com"),
            Cookie("stale", "x", "example.com", expires=NOW - 5),
        ],
    )
    merged = old.merge_cookies(
        [
            Cookie("a", "new", ".example.com"),
            Cookie("b", "", "example.com", expires=0.0),
            Cookie("c", "3", "example.com"),
        ],
        now=NOW,
    )
    values = {(c.name, c.path): c.value for c in merged.cookies}
    assert values == {("a", "/"): "new", ("a", "/x"): "other-path", ("c", "/"): "3"}
    assert len(old.cookies) == 4  # the original is untouched


def test_a_slid_expiry_is_no_change_worth_writing_and_anything_else_is():
    """A sliding cookie sent again with an expiry less than a minute later is the same record;
    a later slide, an earlier expiry, a new value or attribute, or another cookie is not."""
    bm = Cookie("__cf_bm", "v1", "example.com", expires=NOW + 1800, same_site="None")
    held = SessionRecord(site="s", harvested_at=NOW, cookies=[bm, Cookie("cf_clearance", "c", "example.com", expires=NOW + 86400)],
                         essential_cookies=["__cf_bm"], expires_at=NOW + 1800)  # fmt: skip

    def after(*cookies: Cookie) -> SessionRecord:
        return held.merge_cookies(cookies, now=NOW, essential=held.essential_cookies)

    def slid(seconds: float) -> Cookie:
        return Cookie("__cf_bm", "v1", "example.com", expires=NOW + 1800 + seconds, same_site="None")

    assert after(slid(0)) == held and after(slid(0)).slid_from(held)
    assert after(slid(59)).expires_at == NOW + 1859 and after(slid(59)).slid_from(held)
    assert not after(slid(60)).slid_from(held)  # a minute or more: written
    assert not after(slid(-1)).slid_from(held)  # an expiry moved earlier: written
    changed = [
        Cookie("__cf_bm", "v2", "example.com", expires=NOW + 1810, same_site="None"),  # rotated
        Cookie("__cf_bm", "v1", "example.com", expires=NOW + 1810),  # an attribute changed
        Cookie("__cf_bm", "v1", "example.com", expires=None, same_site="None"),  # a session cookie now
        Cookie("other", "x", "example.com"),  # a new cookie
        Cookie("cf_clearance", "", "example.com", expires=0.0),  # a deletion
    ]
    for cookie in changed:
        assert not after(cookie).slid_from(held), cookie.name
    assert not SessionRecord(**{**vars(held), "generation": "agents"}).slid_from(held)  # another field


def test_session_expires_at_takes_the_earliest_essential_deadline():
    cookies = [Cookie("sid", "1", "e.com", expires=NOW + 100), Cookie("cf", "2", "e.com", expires=NOW + 50)]
    assert session_expires_at(cookies, ["sid"]) == NOW + 100
    assert session_expires_at(cookies, ["sid", "cf"]) == NOW + 50
    assert session_expires_at(cookies, ["sid"], api_key_expires_at=NOW + 10) == NOW + 10
    assert session_expires_at([Cookie("sid", "1", "e.com")], ["sid"]) is None  # a session cookie
    assert session_expires_at(cookies, ["missing"]) == 0.0  # unusable without it
    record = SessionRecord(site="s", cookies=cookies).merge_cookies(
        [Cookie("sid", "1", "e.com", expires=NOW + 900)], essential=["sid"], now=NOW
    )
    assert record.expires_at == NOW + 900


def test_cookie_validation():
    with pytest.raises(ValueError):
        Cookie("", "v", "example.com")
    with pytest.raises(ValueError):
        Cookie("n", "v", ".example.com", host_only=True)
    with pytest.raises(ValueError):
        Cookie("n", "v", "example.com", same_site="lax")
    assert Cookie("n", "v", ".EXAMPLE.com.").domain == "example.com"
