"""HAR files without a browser: reading (limits, typed errors), a session from a HAR, scrubbing."""
from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from harvestkit.common.har import HarFormatError, HarTooLarge, load_har, read_har
from harvestkit.common.scrub import Scrubber, scrub_har
from harvestkit.harvester.har import session_from_har
from harvestkit.harvester.sites import recipe_for

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
HINTS = [("sec-ch-ua", '"Chromium";v="156", "Not-A.Brand";v="24"'), ("sec-ch-ua-mobile", "?0"),
         ("sec-ch-ua-platform", '"Linux"')]
KEY = "csk-" + "k3y" * 12
SESSION = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0." + "s" * 40 + ".tail" + "t" * 20


def entry(method: str, url: str, *, headers: list[tuple[str, str]] = (), status: int = 200,
          response_headers: list[tuple[str, str]] = (), body: str | None = None, base64_body: bool = False,
          post: str | None = None, frames: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One entry as Chrome's DevTools writes it."""
    content: dict[str, Any] = {"size": len(body or ""), "mimeType": "application/json"}
    if body is not None:
        content["text"] = base64.b64encode(body.encode()).decode() if base64_body else body
        if base64_body:
            content["encoding"] = "base64"
    item: dict[str, Any] = {
        "_resourceType": "fetch", "cache": {}, "startedDateTime": "2026-12-01T22:00:00.000Z", "time": 12.5,
        "request": {"method": method, "url": url, "httpVersion": "http/2.0",
                    "headers": [{"name": n, "value": v} for n, v in headers], "queryString": [], "cookies": [],
                    "headersSize": -1, "bodySize": 0},
        "response": {"status": status, "statusText": "", "httpVersion": "http/2.0",
                     "headers": [{"name": n, "value": v} for n, v in response_headers], "cookies": [],
                     "content": content, "redirectURL": "", "headersSize": -1, "bodySize": -1},
        "timings": {"send": 0, "wait": 10, "receive": 2},
    }
    if post is not None:
        item["request"]["postData"] = {"mimeType": "application/json", "text": post}
    if frames is not None:
        item["_webSocketMessages"] = frames
    return item


def har(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, "pages": [],
                    "entries": list(entries)}}


def cerebras_har() -> dict[str, Any]:
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 86400 * 30))
    browser = [("user-agent", UA), *HINTS, ("accept-language", "de-DE,de;q=0.9")]
    return har(
        entry("GET", "https://www.google-analytics.com/collect?v=2", headers=browser),
        entry("POST", "https://inference.cerebras.ai/api/auth/callback/credentials", headers=browser, status=302,
              response_headers=[("set-cookie", f"__Secure-authjs.session-token=old{SESSION}; Path=/; Secure; HttpOnly"),
                                ("set-cookie", "__Host-authjs.csrf-token=abcdef123456%7Cffff; Path=/; Secure")]),
        entry("GET", "https://inference.cerebras.ai/api/auth/session", headers=browser, base64_body=True,
              response_headers=[("set-cookie", f"__Secure-authjs.session-token={SESSION}; Path=/; Expires={later}; "
                                               "Secure; HttpOnly; SameSite=Lax")],
              body=json.dumps({"user": {"name": "Ann", "email": "ann@example.com", "demoApiKey": KEY},
                               "expires": "2027-01-01T00:00:00.000Z"})),
        entry("POST", "https://api.cerebras.ai/v1/chat/completions", headers=[*browser, ("authorization", f"Bearer {KEY}")],
              post=json.dumps({"model": "gpt-oss-120b", "messages": [{"role": "user", "content": "hi"}]}),
              body='data: {"choices":[{"delta":{"content":"Hello"}}]}\n\n'),
    )


# -- reading -------------------------------------------------------------------------------------


def test_a_devtools_har_reads_into_entries_with_bodies_decoded_and_set_cookies_split() -> None:
    doc = cerebras_har()
    doc["log"]["entries"][1]["response"]["headers"] = [{"name": "Set-Cookie", "value": "a=1; Path=/\nb=2; Path=/"}]
    entries = read_har(json.dumps(doc).encode())
    assert [e.host for e in entries] == ["www.google-analytics.com", "inference.cerebras.ai", "inference.cerebras.ai",
                                         "api.cerebras.ai"]
    assert entries[1].set_cookies == ["a=1; Path=/", "b=2; Path=/"]
    assert entries[2].json_body()["user"]["demoApiKey"] == KEY  # base64 content decoded
    assert entries[3].request_header("Authorization") == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"log": {"entries": [{"request": {"method": "GET", "url": "https://x"', "ends early (truncated?)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not UTF-8 text"),
        (b"# Netscape HTTP Cookie File\n", "invalid JSON at line 1, column 1"),
        (b'{"cookies": []}', "no log.entries list"),
        (b'{"log": {"entries": [{"request": {"url": "https://x"}, "response": {}}]}}', "HAR entry 0: request.method"),
        (b'{"log": {"entries": [7]}}', "HAR entry 0: not an object"),
    ],
)
def test_input_that_is_not_a_har_gets_a_typed_error_saying_why(data: bytes, message: str) -> None:
    with pytest.raises(HarFormatError, match=re.escape(message)):
        read_har(data)


def test_a_200_mb_har_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.har"
    with path.open("wb") as out:  # sparse: 200 MB that take no disk and would take long to parse
        out.truncate(200 * 1024 * 1024)
    with pytest.raises(HarTooLarge, match="210 MB, over the 105 MB limit"):
        load_har(path)


# -- a session from a HAR -----------------------------------------------------------------------


def test_a_cerebras_har_gives_the_session_the_key_the_user_agent_and_hints() -> None:
    found = session_from_har(read_har(json.dumps(cerebras_har())), recipe_for("cerebras"), "default")
    record = found.record
    assert (found.used, found.ignored) == (3, 1)  # the analytics call is another site's
    cookies = {c.name: c.value for c in record.cookies}
    assert cookies["__Secure-authjs.session-token"] == SESSION  # the last Set-Cookie wins
    assert "__Host-authjs.csrf-token" in cookies
    assert record.api_key == KEY and record.source == "import"
    assert record.user_agent == UA
    assert record.client_hints == dict(HINTS)
    assert record.extra["headers"] == {"accept-language": "de-DE,de;q=0.9"}
    assert record.expires_at is not None and record.expires_at > time.time() + 86400 * 29


def test_cookies_only_seen_in_requests_are_taken_for_that_host() -> None:
    doc = har(entry("GET", "https://playground.ai.cloudflare.com/", headers=[
        ("user-agent", UA), ("cookie", "cf_clearance=clear123456789; __cf_bm=bm123456789"), ("cookie", "x=1")]))
    doc["log"]["entries"][0]["request"]["cookies"] = [{"name": "cf_clearance", "value": "clear123456789"},
                                                       {"name": "__cf_bm", "value": "bm123456789"}]
    record = session_from_har(read_har(json.dumps(doc)), recipe_for("cloudflare"), "default").record
    assert {(c.name, c.domain, c.host_only) for c in record.cookies} == {
        ("cf_clearance", "playground.ai.cloudflare.com", True), ("__cf_bm", "playground.ai.cloudflare.com", True)}


def test_a_sanitized_har_or_one_of_another_site_says_what_to_do() -> None:
    sanitized = cerebras_har()
    for item in sanitized["log"]["entries"]:  # as DevTools' sanitized export: no cookies, no credentials
        item["response"]["headers"] = []
        item["request"]["headers"] = [h for h in item["request"]["headers"] if h["name"] not in ("cookie", "authorization")]
    key_only = session_from_har(read_har(json.dumps(sanitized)), recipe_for("cerebras"), "default").record
    assert key_only.api_key == KEY and key_only.cookies == []  # the demo key alone still chats
    cloudflare = har(entry("GET", "https://playground.ai.cloudflare.com/", headers=[("user-agent", UA)]))
    with pytest.raises(HarFormatError, match=r"with sensitive data"):
        session_from_har(read_har(json.dumps(cloudflare)), recipe_for("cloudflare"), "default")
    with pytest.raises(HarFormatError, match=r"no request to playground.ai.cloudflare.com \(4 entries of other sites\)"):
        session_from_har(read_har(json.dumps(cerebras_har())), recipe_for("cloudflare"), "default")


def test_cookies_of_other_domains_in_a_site_response_are_not_taken() -> None:
    doc = har(entry("GET", "https://playground.ai.cloudflare.com/", headers=[("user-agent", UA)],
                    response_headers=[("set-cookie", "__cf_bm=bm123456789; Path=/; Domain=ai.cloudflare.com"),
                                      ("set-cookie", "evil=1; Path=/; Domain=cloudflare.com")]))
    record = session_from_har(read_har(json.dumps(doc)), recipe_for("cloudflare"), "default").record
    assert [c.name for c in record.cookies] == ["__cf_bm"]


# -- scrubbing ------------------------------------------------------------------------------------


def test_scrubbing_removes_every_secret_and_keeps_the_rest() -> None:
    doc = cerebras_har()
    doc["log"]["entries"].append(entry("GET", f"https://inference.cerebras.ai/api/x?csrfToken=tok123456789&model=m1",
                                       headers=[("cookie", f"__Secure-authjs.session-token={SESSION}")]))
    doc["log"]["entries"].append(entry("GET", "wss://playground.ai.cloudflare.com/agents/chat", frames=[
        {"type": "send", "time": 1.0, "opcode": 1,
         "data": json.dumps({"type": "cf_agent_use_chat_request", "init": {"body": json.dumps({"token": "wsSecret12345"})}})}]))
    out = scrub_har(doc)
    text = json.dumps(out)
    for secret in (KEY, SESSION, "abcdef123456%7Cffff", "tok123456789", "ann@example.com", "wsSecret12345"):
        assert secret not in text
        assert base64.b64encode(secret.encode()).decode()[:16] not in text
    body = json.loads(base64.b64decode(out["log"]["entries"][2]["response"]["content"]["text"]))
    assert body["user"]["demoApiKey"].startswith("hk-redacted-") and body["user"]["name"] == "Ann"
    assert "gpt-oss-120b" in text and "Hello" in text and "model=m1" in text  # what is not secret stays
    # the same value has the same placeholder everywhere: the session cookie set, then sent
    set_cookie = out["log"]["entries"][2]["response"]["headers"][0]["value"]
    sent = out["log"]["entries"][4]["request"]["headers"][0]["value"]
    assert set_cookie.split(";")[0] == sent
    assert read_har(json.dumps(out))  # still a HAR


def test_the_same_scrubber_keeps_placeholders_across_files_and_leaves_benign_values() -> None:
    scrubber = Scrubber()
    first = scrub_har(har(entry("GET", "https://a.example/", headers=[("authorization", "Bearer abcdefghijkl")])), scrubber)
    second = scrub_har(har(entry("GET", "https://a.example/", body="token abcdefghijkl in a log line")), scrubber)
    placeholder = first["log"]["entries"][0]["request"]["headers"][0]["value"].split()[1]
    assert placeholder.startswith("hk-redacted-1-")
    assert placeholder in second["log"]["entries"][0]["response"]["content"]["text"]
    benign = har(entry("GET", "https://a.example/", body=json.dumps(
        {"usage": {"prompt_tokens": 12, "completion_tokens": 30}, "max_tokens": 100, "session": "no", "tokens": [1, 2]})))
    assert scrub_har(benign) == benign
