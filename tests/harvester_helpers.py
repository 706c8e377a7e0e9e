"""Shared pieces of the harvester tests: one sandbox per module, a private HARVESTKIT_HOME per test,
and the test acting as the user who signs in to the sandbox's Cerebras form."""
from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harvestkit.cache import AuthCache
from harvestkit.harvester.browser import find_browser
from harvestkit.harvester.errors import BrowserNotFound
from harvestkit.sandbox import Sandbox


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


async def wait_until(tab: Any, condition: str, timeout: float = 15.0) -> None:
    """Poll the page until the JavaScript `condition` holds."""
    deadline = time.monotonic() + timeout
    while not await tab.evaluate(f"!!({condition})"):
        assert time.monotonic() < deadline, f"page never satisfied {condition}"
        await asyncio.sleep(0.05)


async def sign_in_as_user(tab: Any) -> None:
    """What a person does in the login window: click "Sign in", fill the form, submit."""
    await wait_until(tab, "document.body && document.body.dataset.state === 'signed-out'")
    await (await tab.select("#signin")).click()
    await wait_until(tab, "document.getElementById('email') !== null")
    await (await tab.select("#email")).send_keys(Sandbox.email)
    await (await tab.select("#password")).send_keys(Sandbox.password)
    await (await tab.select("#submit")).click()


def lowered(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def leftovers(tmp_path: Path) -> list[str]:
    """What a harvest must not leave behind: temporary dirs, held profile locks (see `sandbox`)."""
    found = [str(p) for p in (tmp_path / "tmp").iterdir()]
    return found + [str(p) for p in (tmp_path / "home" / "browser").glob("*/*.lock.holder")]
