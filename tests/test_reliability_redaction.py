"""Redaction masks secrets and only secrets: prose such as "session: nothing cached" stays readable,
right next to the same shapes carrying a real value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from harvestkit.cache.redact import redact_url
from harvestkit.client.errors import MissingCredentials, redact_text

SECRET = "Zx9s8d7f6g5h4j3k2l1q"


@pytest.mark.parametrize(
    "benign",
    [
        "no usable cerebras session: nothing cached and harvesting is disabled",
        "no usable cloudflare session: expired",
        "token: missing",
        "Cookie: none",
        "csrf: Required",
        "the session: refused by the server, api_key: absent",
    ],
)
def test_prose_after_a_secret_name_is_left_alone(benign: str) -> None:
    assert redact_text(benign) == benign


@pytest.mark.parametrize(
    "text",
    [
        f"session: {SECRET}",  # the same shape as the prose, with a value
        f"session: s3cr3tv4lue",  # short, but not a word: it has digits
        f"token: {SECRET.lower()}x",  # letters only, but longer than any word
        f"session=nothing{SECRET}",
        "session=nothingelse",  # '=' always assigns a value
        f'{{"session": "nothingelse"}}',  # so does a quoted JSON value
        f"Authorization: Bearer {SECRET}",
        f"Authorization: Basic {SECRET}",
        f"__Secure-authjs.session-token: {SECRET}",
        f"csrfToken: {SECRET}",
    ],
)
def test_values_after_a_secret_name_are_masked(text: str) -> None:
    out = redact_text(text)
    value = text.rsplit(" ", 1)[-1].split("=", 1)[-1].strip('"{}')
    assert value not in out, out
    assert "****" in out or "..." in out


def test_the_missing_session_message_reads_whole() -> None:
    error = MissingCredentials("no usable cerebras session: nothing cached", provider="cerebras")
    assert "nothing cached" in str(error) and "****" not in str(error)


def test_the_command_says_nothing_is_cached(tmp_path: Path) -> None:
    env = {**os.environ, "HARVESTKIT_HOME": str(tmp_path / "home"), "HARVESTKIT_NO_HARVEST": "1"}
    env.pop("HARVESTKIT_PROXY", None)
    done = subprocess.run(
        [sys.executable, "-m", "harvestkit.cli", "chat", "-p", "cerebras", "hi"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "****" not in done.stderr and "harvesting is disabled" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_proxy_password_is_masked_whole() -> None:
    shown = redact_url("http://alice:correct-horse-battery-staple@127.0.0.1:8080")
    assert shown == "http://alice:****@127.0.0.1:8080"
