"""The client error tree and error_from_response (pure)."""

from __future__ import annotations

import email.utils
import json
import time

import pytest
from harvestkit.cache.errors import HarvestkitError
from harvestkit.cache.redact import redact
from harvestkit.client.errors import (
    AuthError,
    AuthExpired,
    BadRequest,
    ChallengeError,
    ClientError,
    ConnectError,
    MissingCredentials,
    ModelNotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    StreamBroken,
    Timeout,
    parse_retry_after,
    redact_text,
)
from harvestkit.client.responses import error_from_body, error_from_response
from hypothesis import given, settings
from hypothesis import strategies as st

KEY = "csk-abcdef1234567890"


def cerebras(status: int, body: dict, headers: dict | None = None) -> ClientError:
    return error_from_response(status, headers or {}, json.dumps(body).encode(), "cerebras")


def test_tree() -> None:
    for cls in (
        AuthError,
        ChallengeError,
        RateLimited,
        ModelNotFound,
        BadRequest,
        ServerError,
        StreamBroken,
        ConnectError,
        Timeout,
    ):
        assert issubclass(cls, ClientError) and issubclass(cls, HarvestkitError)
    assert issubclass(MissingCredentials, AuthError) and issubclass(AuthExpired, AuthError)
    assert issubclass(ProtocolError, StreamBroken)


def test_stream_broken_carries_text_and_cause() -> None:
    cause = OSError("reset")
    err = StreamBroken("cut", text="Hello", cause=cause, provider="cerebras")
    assert err.text == "Hello" and err.cause is cause and err.__cause__ is cause
    assert str(err).startswith("cerebras: cut") and "Retry" in str(err)


def test_default_message_and_hint() -> None:
    assert ServerError().message == "server error"
    assert str(ServerError()) == "server error. Retry later."
    assert RateLimited(headers={"Retry-After": "3"}).retry_after == 3.0


def test_cerebras_401_wrong_api_key() -> None:
    err = cerebras(
        401,
        {
            "message": "Wrong API Key",
            "type": "invalid_request_error",
            "param": "api_key",
            "code": "wrong_api_key",
        },
    )
    assert type(err) is AuthExpired
    assert (err.status_code, err.code, err.type, err.param, err.provider, err.message) == (
        401,
        "wrong_api_key",
        "invalid_request_error",
        "api_key",
        "cerebras",
        "Wrong API Key",
    )
    assert "harvest a fresh session" in str(err)


def test_cerebras_403_not_authenticated() -> None:
    err = cerebras(403, {"detail": "Not authenticated"})
    assert type(err) is MissingCredentials and err.message == "Not authenticated"


def test_other_403_is_auth_error() -> None:
    assert type(cerebras(403, {"message": "Forbidden"})) is AuthError


def test_cerebras_404_model_not_found() -> None:
    err = cerebras(
        404,
        {
            "message": "Model does not exist or you do not have access to it.",
            "type": "not_found_error",
            "param": "model",
            "code": "model_not_found",
        },
    )
    assert type(err) is ModelNotFound and err.code == "model_not_found"


@pytest.mark.parametrize("status", [400, 422])
def test_cerebras_bad_request(status: int) -> None:
    err = cerebras(
        status,
        {
            "message": "messages: field required",
            "type": "invalid_request_error",
            "param": "validation_error",
            "code": "wrong_api_format",
        },
    )
    assert type(err) is BadRequest and err.status_code == status
    assert "messages: field required" in str(err)


def test_fastapi_422_detail_list() -> None:
    err = cerebras(422, {"detail": [{"loc": ["body", "model"], "msg": "field required"}]})
    assert type(err) is BadRequest and "field required" in err.message


@pytest.mark.parametrize(
    "code", ["request_quota_exceeded", "token_quota_exceeded", "queue_exceeded"]
)
def test_cerebras_429(code: str) -> None:
    err = cerebras(
        429,
        {
            "message": "Requests per minute limit exceeded - too many requests sent.",
            "type": "too_many_requests_error",
            "param": "quota",
            "code": code,
        },
        {"x-ratelimit-reset-tokens-minute": "12.5"},
    )
    assert type(err) is RateLimited and err.retry_after == 12.5 and err.code == code
    assert err.headers == {"x-ratelimit-reset-tokens-minute": "12.5"}


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_json(status: int) -> None:
    assert type(cerebras(status, {"message": "internal"})) is ServerError


def test_openai_wrapped_body() -> None:
    err = cerebras(
        404,
        {
            "error": {
                "message": "The model `x` does not exist",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        },
    )
    assert type(err) is ModelNotFound and err.message == "The model `x` does not exist"
    err = cerebras(
        401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}
    )
    assert type(err) is AuthExpired


def test_other_statuses() -> None:
    assert type(cerebras(408, {"message": "slow"})) is Timeout
    assert type(cerebras(402, {"message": "payment required"})) is BadRequest
    assert type(cerebras(404, {"message": "no route"})) is BadRequest


CHALLENGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
    "<script>window._cf_chl_opt={cvId: '3'};</script></head><body>"
    '<div id="cf-please-wait"></div><script src="/cdn-cgi/challenge-platform/h/b/orchestrate/'
    'chl_page/v1"></script></body></html>'
)


@pytest.mark.parametrize("status", [403, 503])
@pytest.mark.parametrize(
    "page",
    [
        CHALLENGE,
        "<html><title>Attention Required! | Cloudflare</title></html>",
        "<html><body><div class='cf_chl_opt'></div></body></html>",
    ],
)
def test_challenge_page(status: int, page: str) -> None:
    err = error_from_response(status, {"Content-Type": "text/html"}, page.encode(), "cloudflare")
    assert type(err) is ChallengeError and err.status_code == status
    assert "user agent" in str(err)


def test_challenge_header() -> None:
    err = error_from_response(403, {"cf-mitigated": "challenge"}, b"", "cloudflare")
    assert type(err) is ChallengeError


def test_cloudflare_empty_400_says_model_may_be_unknown() -> None:
    err = error_from_response(400, {"content-type": "text/plain"}, b"", "cloudflare")
    assert type(err) is BadRequest and "model may be unknown" in str(err)


def test_html_where_json_expected() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    err = error_from_response(502, {"content-type": "text/html"}, page, "cerebras")
    assert type(err) is ServerError
    assert "expected JSON but got an HTML page titled '502 Bad Gateway'" in str(err)
    assert "JSONDecodeError" not in str(err) and "Expecting value" not in str(err)
    err = error_from_response(200, {}, b"<!doctype html><p>login</p>", "cerebras")
    assert isinstance(err, ProtocolError) and "HTML page" in str(err)


def test_non_json_text_body() -> None:
    err = error_from_response(500, {}, b"upstream connect error", "cerebras")
    assert type(err) is ServerError and "upstream connect error" in str(err)


def test_empty_non_400() -> None:
    assert type(error_from_response(503, {}, b"  ", "cerebras")) is ServerError
    assert type(error_from_response(401, {}, b"", "cerebras")) is AuthExpired


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "2.5", "x-ratelimit-reset-tokens-minute": "30"}, 2.5),
        ({"x-ratelimit-reset-tokens-minute": "21.37"}, 21.37),
        ({"retry-after": "3600"}, 3600.0),  # not capped here: Settings.max_retry_wait is the one cap
        ({"retry-after-ms": "-5"}, 0.0),
        ({"retry-after": "soon", "x-ratelimit-reset-tokens-minute": "4"}, 4.0),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict, expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_retry_after_http_date() -> None:
    now = 1_761_231_230.0
    date = email.utils.formatdate(now + 20, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(20)
    assert (
        parse_retry_after({"retry-after": email.utils.formatdate(now + 500, usegmt=True)}, now=now)
        == pytest.approx(500)
    )
    live = parse_retry_after({"retry-after": email.utils.formatdate(time.time() + 30, usegmt=True)})
    assert live is not None and 25 <= live <= 30


def test_rate_limited_from_response_uses_headers() -> None:
    err = cerebras(429, {"message": "slow down"}, {"retry-after-ms": "250", "set-cookie": "a=b"})
    assert isinstance(err, RateLimited) and err.retry_after == 0.25
    assert "set-cookie" not in err.headers and "Retry in 0.2" in str(err)
    err = error_from_response(429, {}, b"<html>Too Many</html>", "cloudflare")
    assert isinstance(err, RateLimited) and err.retry_after is None


def test_key_in_server_message_is_redacted() -> None:
    err = cerebras(401, {"message": f"Wrong API Key: {KEY}", "code": "wrong_api_key"})
    assert KEY not in str(err) and KEY not in err.message
    assert "abcdef1234" not in str(err) and f"Wrong API Key: {redact(KEY)}" in str(err)


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    "text, secret",
    [
        (f"Authorization: Bearer {KEY}", KEY),
        (f"Bearer {JWT}", JWT),
        (f"token {JWT} rejected", JWT),
        (
            "cookie __Secure-authjs.session-token=abcdefghijklmnopqrstuvwxyz0123456789; path=/",
            "abcdefghijklmnopqrstuvwxyz0123456789",
        ),
        (
            "cf_clearance=Zx9s8d7f6g5h4j3k2l1qwertyuiop-1761231230-1.2.1.1",
            "Zx9s8d7f6g5h4j3k2l1qwertyuiop-1761231230-1.2.1.1",
        ),
        ("api_key: sk-proj-ABCDEFGH12345678", "sk-proj-ABCDEFGH12345678"),
        ('{"demoApiKey": "csk-zyxw9876543210abcd"}', "csk-zyxw9876543210abcd"),
    ],
)
def test_redact_secrets(text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out and secret[4:-4] not in out


def test_redact_leaves_ordinary_text() -> None:
    text = "Model llama-4-scout-17b-16e-instruct does not exist; max_tokens: 4096, session expired"
    assert redact_text(text) == text


def test_long_messages_are_shortened() -> None:
    err = cerebras(400, {"message": "x" * 5000})
    assert len(str(err)) < 500


def test_in_band_errors() -> None:
    err = error_from_body(
        None, {"error": {"message": "overloaded"}, "status_code": 503}, "cerebras"
    )
    assert type(err) is ServerError and err.status_code == 503
    err = error_from_body(None, "Error during inference", "cloudflare", text="Hel")
    assert type(err) is StreamBroken and err.text == "Hel" and "Error during inference" in str(err)
    err = error_from_body(None, {"message": "x", "code": "token_quota_exceeded"}, "cerebras")
    assert type(err) is RateLimited and err.retry_after is None


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 999),
    st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=4),
    st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
            lambda c: (
                st.lists(c, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "error",
                            "message",
                            "detail",
                            "code",
                            "type",
                            "param",
                            "status_code",
                            "status",
                        ]
                    ),
                    c,
                    max_size=4,
                )
            ),
            max_leaves=10,
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_error_from_response_never_raises(status: int, headers: dict, body: bytes) -> None:
    err = error_from_response(status, headers, body, "cerebras")
    assert isinstance(err, ClientError) and isinstance(str(err), str)
