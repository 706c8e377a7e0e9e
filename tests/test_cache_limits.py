"""`cache import` limits, `cache clear` saying what it removed, the corrupt-record warning as a log
line, and a symlinked site folder refused by every command alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harvestkit.cache import AuthCache, Cookie, SessionRecord
from harvestkit.cache.limits import MAX_COOKIES

HARVESTKIT = [sys.executable, "-m", "harvestkit.cli"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def run(home: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARVESTKIT_HOME": str(home), "HARVESTKIT_NO_HARVEST": "1"}
    env.pop("HARVESTKIT_PROXY", None)
    done = subprocess.run([*HARVESTKIT, *args], input=stdin, capture_output=True, env=env, timeout=60, check=False)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def line(domain: str, name: str, value: str) -> str:
    return f"{domain}\tTRUE\t/\tTRUE\t{int(time.time()) + 3600}\t{name}\t{value}\n"


def test_foreign_and_public_suffix_cookies_are_refused_and_named(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "cookies.txt"
    path.write_text(
        line(".cerebras.ai", "__Secure-authjs.session-token", "tok-value-1234567890")
        + line(".google.com", "NID", "google-secret-value")
        + line(".ai", "supercookie", "suffix-secret-value")
        + line(".cerebras.ai", "huge", "x" * 5000)
    )
    result = run(home, "cache", "import", "cerebras", str(path))
    assert result.returncode == 0, result.stderr
    assert "now holds 1 cookies" in result.stdout
    warning = result.stderr.strip()
    assert warning.startswith("WARNING harvestkit.cache: cerebras: refused 3 of 4 cookies")
    assert "outside cerebras.ai (google.com)" in warning and "on a public suffix (ai)" in warning
    assert "over 4096 bytes (cerebras.ai)" in warning
    assert "secret-value" not in warning and len(result.stderr.splitlines()) == 1
    record = AuthCache(home / "sessions").get_sync("cerebras")
    assert [c.name for c in record.cookies] == ["__Secure-authjs.session-token"]


def test_only_foreign_cookies_is_an_error(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "cookies.txt"
    path.write_text(line(".example.com", "a", "value-a") + line(".com", "b", "value-b"))
    result = run(home, "cache", "import", "cerebras", str(path))
    assert result.returncode == 1 and "no cookie to import" in result.stderr and "public suffix (com)" in result.stderr
    assert AuthCache(home / "sessions").get_sync("cerebras") is None


def test_a_huge_file_is_refused_before_it_is_parsed(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "cookies.txt"
    with path.open("w") as handle:
        for i in range(40_000):
            handle.write(line(".cerebras.ai", f"c{i}", "v" * 20))
    result = run(home, "cache", "import", "cerebras", str(path))
    assert result.returncode == 1 and "larger than 1024 KiB" in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_too_many_cookies_for_one_session(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "cookies.txt"
    path.write_text("".join(line(".cerebras.ai", f"c{i}", "v") for i in range(MAX_COOKIES + 1)))
    result = run(home, "cache", "import", "cerebras", str(path))
    assert result.returncode == 1 and f"would hold {MAX_COOKIES + 1} cookies" in result.stderr


@pytest.mark.parametrize("junk", [bytes(range(256)) * 4, b"\xff\xfe\x00garbage", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64])
def test_binary_input_is_a_typed_error(home: Path, junk: bytes) -> None:
    result = run(home, "cache", "import", "cerebras", "-", stdin=junk)
    assert result.returncode == 1 and "not a text cookie file" in result.stderr, result.stderr
    assert "UnicodeDecodeError" not in result.stderr and "unexpected" not in result.stderr


def test_empty_input_says_so(home: Path) -> None:
    result = run(home, "cache", "import", "cerebras", "/dev/null")
    assert result.returncode == 1 and "empty" in result.stderr


def _seed(home: Path) -> AuthCache:
    cache = AuthCache(home / "sessions")
    cookie = Cookie("__Secure-authjs.session-token", "tok-value-1234567890", "cerebras.ai", expires=time.time() + 3600)
    cache.put_sync(SessionRecord("cerebras", cookies=[cookie], source="import"))
    return cache


def test_clear_says_what_it_removed_and_where_the_sign_in_lives(home: Path) -> None:
    cache = _seed(home)
    (home / "sessions" / "cerebras" / "default.json.corrupt-20260101T000000.000000Z").write_text("{")
    profile = home / "browser" / "cerebras" / "default"
    profile.mkdir(parents=True, mode=0o700)
    (profile / "Cookies").write_text("sign-in")
    kept = run(home, "cache", "clear", "cerebras")
    assert kept.returncode == 0
    assert f"removed the cerebras/default session ({cache.record_path('cerebras')})" in kept.stdout
    assert "removed the unreadable copy" in kept.stdout
    assert f"kept the browser profile {profile} (the cerebras sign-in lives there" in kept.stdout
    assert profile.exists()
    wiped = run(home, "cache", "clear", "--all", "--browser-profile")
    assert wiped.returncode == 0 and f"removed the browser profile {profile}" in wiped.stdout
    assert "harvestkit login cerebras" in wiped.stdout and not profile.exists()
    assert "nothing to remove" in run(home, "cache", "clear", "--all").stdout


def test_the_corrupt_record_warning_is_a_log_line(home: Path) -> None:
    cache = _seed(home)
    cache.record_path("cerebras").write_text('{"site": ')
    result = run(home, "status")
    assert result.returncode == 0
    assert result.stderr.startswith("WARNING harvestkit.cache: the cached session cerebras/default was unreadable")
    assert len(result.stderr.splitlines()) == 1 and "warnings.warn" not in result.stderr


def test_a_symlinked_site_folder_is_refused_everywhere(home: Path, tmp_path: Path) -> None:
    _seed(home)
    elsewhere = tmp_path / "elsewhere"
    (home / "sessions" / "cerebras").rename(elsewhere)
    (home / "sessions" / "cerebras").symlink_to(elsewhere)
    for args in (["status"], ["chat", "-p", "cerebras", "Hi"], ["cache", "show", "cerebras"], ["cache", "export", "cerebras"]):
        result = run(home, *args)
        assert result.returncode == 1 and "is a symbolic link" in result.stderr, (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1
    assert json.loads((elsewhere / "default.json").read_text())["site"] == "cerebras"
