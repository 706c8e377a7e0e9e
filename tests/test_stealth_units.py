"""Stealth settings and the challenge's verdict, without a browser."""
from __future__ import annotations

import base64
import io
import json
import tarfile
import time
from pathlib import Path

import pytest
from harvestkit.harvester.browser import Chromium, LaunchOptions
from harvestkit.harvester.stealth import (
    Fingerprint,
    StealthConfigError,
    default_timezone,
    fingerprint_path,
    launch_env,
    launch_flags,
    profile_fingerprint,
)
from harvestkit.sandbox import detectors
from harvestkit.sandbox.challenge import NonceBook, judge, server_flags

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
HEADERS = {
    "User-Agent": UA,
    "Sec-CH-UA": '"Chromium";v="156", "Not:A-Brand";v="24"',
    "Sec-CH-UA-Platform": '"Linux"',
    "Accept-Language": "en-US,en;q=0.9",
}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARVESTKIT_HOME", str(tmp_path / "home"))
    for name in ("HARVESTKIT_STEALTH", "HARVESTKIT_TIMEZONE", "HARVESTKIT_LANGUAGES", "HARVESTKIT_SCREEN"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


@pytest.mark.parametrize(("tz", "expected"), [("UTC", "America/New_York"), ("Etc/UTC", "America/New_York"),
                                               ("Europe/Paris", "Europe/Paris"), ("Not/AZone", "America/New_York")])
def test_the_default_time_zone_is_the_hosts_but_never_utc(monkeypatch: pytest.MonkeyPatch, tz: str, expected: str) -> None:
    monkeypatch.setenv("TZ", tz)
    assert default_timezone() == expected


def test_a_profile_keeps_its_fingerprint_and_the_environment_overrides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    first = profile_fingerprint("work")
    monkeypatch.setenv("TZ", "Europe/Paris")  # the host moved: the profile stays the same device
    assert profile_fingerprint("work") == first and first.timezone == "Asia/Tokyo"
    assert json.loads(fingerprint_path("work").read_text()) == {
        "timezone": "Asia/Tokyo", "languages": ["en-US", "en"], "screen": [1920, 1080]
    }
    assert fingerprint_path("work").parent.stat().st_mode & 0o077 == 0
    assert fingerprint_path("work").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("HARVESTKIT_TIMEZONE", "America/Chicago")
    monkeypatch.setenv("HARVESTKIT_LANGUAGES", "fr-FR, fr")
    monkeypatch.setenv("HARVESTKIT_SCREEN", "2560x1440")
    assert profile_fingerprint("work") == Fingerprint("America/Chicago", ("fr-FR", "fr"), (2560, 1440))
    monkeypatch.setenv("HARVESTKIT_STEALTH", "off")
    assert profile_fingerprint("work") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"timezone": "Mars/Olympus"}', "unknown time zone 'Mars/Olympus'; use an IANA name"),
        ('{"languages": ["en US"]}', "languages must be BCP 47 tags"),
        ('{"screen": [320, 200]}', "screen 320x200 is not a desktop's"),
        ('{"colour": "blue"}', "unknown settings ['colour']"),
        ("{nope", "is not valid JSON"),
    ],
)
def test_a_bad_fingerprint_file_is_a_clear_error(content: str, message: str) -> None:
    path = fingerprint_path("default")
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(StealthConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        profile_fingerprint("default")


def test_bad_variables_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARVESTKIT_SCREEN", "big")
    with pytest.raises(StealthConfigError, match="HARVESTKIT_SCREEN must look like 1920x1080"):
        profile_fingerprint("default")


def test_launch_flags_and_environment() -> None:
    fingerprint = Fingerprint("Europe/Berlin", ("de-DE", "de"), (1920, 1080))
    flags = launch_flags(fingerprint, headless=True)
    assert "--disable-gpu" not in flags and "--use-angle=gl-egl" in flags
    assert "--screen-info={0,0 1920x1080 workAreaTop=27}" in flags and "--window-size=1920,1053" in flags
    assert "--accept-lang=de-DE,de" in flags
    assert not any(f.startswith("--screen-info") for f in launch_flags(fingerprint, headless=False))
    assert launch_env(fingerprint) == {"TZ": "Europe/Berlin", "LANGUAGE": "de_DE"}
    assert fingerprint.accept_language == "de-DE,de;q=0.9"
    assert launch_flags(None, headless=True) == ["--disable-gpu"] and launch_env(None) == {}


def test_the_launcher_applies_the_fingerprint(tmp_path: Path) -> None:
    chromium = Chromium(LaunchOptions(fingerprint=Fingerprint("Asia/Tokyo")))
    chromium._profile = tmp_path
    chromium._fingerprint = chromium.options.fingerprint
    args = chromium.arguments("/usr/bin/chromium")
    assert "--use-angle=gl-egl" in args and "--headless=new" in args and "--disable-gpu" not in args
    off = Chromium(LaunchOptions(fingerprint=None))
    off._profile = tmp_path
    off_args = off.arguments("/usr/bin/chromium")
    assert "--disable-gpu" in off_args and not any(a.startswith(("--screen-info", "--accept-lang")) for a in off_args)


# -- the detectors and the verdict ------------------------------------------------------------------


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_tarball_that_is_not_the_pinned_one_is_refused() -> None:
    tarball = _tarball({detectors.BOTD.module: b"export const load = () => ({detect: () => ({bot: false})});"})
    with pytest.raises(detectors.DetectorsUnavailable, match="is not the pinned sha512-yhuz23"):
        detectors.module_from_tarball(detectors.BOTD, tarball)
    pinned = detectors.Detector("x", "x", "1", detectors.integrity_of(tarball), detectors.BOTD.module)
    assert detectors.module_from_tarball(pinned, tarball).startswith(b"export const load")


def test_the_served_fpscanner_carries_the_sites_key_and_its_payload_decrypts() -> None:
    assets = detectors.load("a-site-key-0123456789")
    assert b"a-site-key-0123456789" in assets.modules["fpscanner"]
    assert detectors.FPSCANNER_KEY_SLOT.encode() not in assets.modules["fpscanner"]
    key = "a-site-key-0123456789"
    plain = json.dumps(json.dumps({"fsid": "FS1_x"})).encode()  # what fpscanner encrypts: JSON of JSON
    payload = base64.b64encode(bytes(b ^ key.encode()[i % len(key)] for i, b in enumerate(plain))).decode()
    assert detectors.decrypt_fpscanner(payload, key) == {"fsid": "FS1_x"}
    assert detectors.encrypt_fpscanner({"fsid": "FS1_x"}, key) == payload


def _report(key: str, details: dict, *, age: float = 0.0, nonce: str = "n1", ua: str = UA) -> dict:
    fingerprint = {
        "fastBotDetectionDetails": details,
        "fsid": "FS1_y",
        "nonce": nonce,
        "time": (time.time() - age) * 1000,
        "signals": {"browser": {"userAgent": ua}},
    }
    encrypted = detectors.encrypt_fpscanner(fingerprint, key)
    return {"ua": UA, "webdriver": False, "botd": {"bot": False, "flagged": []}, "fpscanner": encrypted}


def test_the_verdict_names_every_flag() -> None:
    nonces = NonceBook()
    details = {"hasUTCTimezone": {"detected": True}, "hasWebdriver": {"detected": False}, "hasCDP": {"detected": True}}
    verdict = judge(_report("k" * 24, details), HEADERS, "chrome", "k" * 24, nonces)
    assert verdict.summary() == "refused: fpscanner flagged hasUTCTimezone, hasCDP"
    clean = judge(_report("k" * 24, {}, nonce="n2"), HEADERS, "chrome", "k" * 24, nonces)
    assert clean.passed and clean.summary() == "passed: botd clean, fpscanner clean, server checks clean"
    stale = judge(_report("k" * 24, {}, age=120, nonce="n3"), HEADERS, "chrome", "k" * 24, nonces)
    assert stale.server == ["staleFingerprint"]
    forged = judge(_report("another-key", {}, nonce="n4"), HEADERS, "chrome", "k" * 24, nonces)
    assert forged.fpscanner == ["noReport"]


@pytest.mark.parametrize(
    ("changes", "flags"),
    [
        ({}, []),
        ({"Sec-CH-UA": '"Chromium";v="155"'}, ["secChUaMismatch"]),
        ({"Sec-CH-UA": ""}, ["secChUaMismatch"]),
        ({"Sec-CH-UA-Platform": '"Windows"'}, ["platformHintMismatch"]),
        ({"Accept-Language": ""}, ["noAcceptLanguage"]),
    ],
)
def test_server_side_checks(changes: dict, flags: list) -> None:
    report = {"ua": UA, "webdriver": False}
    assert server_flags(HEADERS | changes, report, "chrome") == flags
    assert server_flags(HEADERS, report, "other") == ["tlsNotBrowser"]
