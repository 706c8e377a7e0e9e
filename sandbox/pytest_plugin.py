"""pytest fixtures for testing your own code against the sandbox.

Enable with `pytest_plugins = ["harvestkit.sandbox.pytest_plugin"]` in a conftest.py.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A fresh sandbox in a thread of its own, stopped after the test (also when it fails)."""
    with Sandbox() as running:
        yield running


@pytest.fixture
def sandbox_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """HARVESTKIT_PROXY and HARVESTKIT_CA_BUNDLE set for the test, pointing at `sandbox`."""
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    return sandbox.env
