"""Shared pieces of the harvester tests: one sandbox per module, a private HARVESTKIT_HOME per test,
and the test acting as the user who signs in to the sandbox's Cerebras form."""
from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harvestkit.cache import AuthCache
from harvestkit.harvester.browser import find_browser
from harvestkit.harvester.errors import BrowserNotFound
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.shortcuts import sign_in_in_browser, wait_for_page


def need_browser() -> None:
    try:
        find_browser()
    except BrowserNotFound:  # pragma: no cover - CI installs Chromium
        pytest.skip("no Chromium installed", allow_module_level=True)


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    """One sandbox for the module: starting one per test would cost more than the tests."""
    logging.getLogger("harvestkit.sandbox").setLevel(logging.ERROR)  # Chromium's own background calls
    with Sandbox() as running:
        yield running


@pytest.fixture
def sandbox(shared_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The module's sandbox with default knobs, no faults, an empty log; a private HARVESTKIT_HOME,
    and HARVESTKIT_PROXY / HARVESTKIT_CA_BUNDLE pointing at the sandbox."""
    shared_sandbox.state.reset()
    monkeypatch.setenv("HARVESTKIT_HOME", str(tmp_path / "home"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # the browser's temp dirs
    for name, value in shared_sandbox.env.items():
        monkeypatch.setenv(name, value)
    yield shared_sandbox
    shared_sandbox.state.reset()


@pytest.fixture
def cache(sandbox: Sandbox) -> AuthCache:
    return AuthCache()


wait_until = wait_for_page  # the tests' name for it
sign_in_as_user = sign_in_in_browser  # what a person does in the login window


def lowered(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def leftovers(tmp_path: Path) -> list[str]:
    """What a harvest must not leave behind: temporary dirs, held profile locks (see `sandbox`)."""
    found = [str(p) for p in (tmp_path / "tmp").iterdir()]
    return found + [str(p) for p in (tmp_path / "home" / "browser").glob("*/*.lock.holder")]
