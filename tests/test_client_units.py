"""Pure pieces of the client: impersonation targets, backoff, settings, message shaping."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from harvestkit.client import (
    Cerebras,
    ConnectError,
    RateLimited,
    ServerError,
    Settings,
    StreamBroken,
)
from harvestkit.client.errors import BadRequest
from harvestkit.client.impersonate import (
    chrome_major,
    chrome_targets,
    default_identity,
    harvested_identity,
    target_for,
)
from harvestkit.client.provider import as_messages
from harvestkit.client.retry import RetryPolicy


def test_target_is_the_newest_chrome_not_above_the_harvested_one() -> None:
    versions = [v for v, _ in chrome_targets()]
    assert versions == sorted(versions) and len(versions) > 3
    newest = versions[-1]
    assert target_for(newest + 20) == f"chrome{newest}"
    below = versions[-2]
    assert target_for(newest - 1) == dict(chrome_targets())[below]
    assert target_for(versions[0] - 10) == dict(chrome_targets())[versions[0]]  # nothing older: the oldest
    assert chrome_major("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/136.0.7103.92 Safari/537.36") == 136
    assert chrome_major("curl/8.0") is None


def test_a_harvested_identity_keeps_its_user_agent_and_hints() -> None:
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
    identity = harvested_identity(ua, {"sec-ch-ua-platform": '"Linux"'})
    assert identity.user_agent == ua and identity.impersonate == target_for(156)
    assert identity.headers() == {"sec-ch-ua-platform": '"Linux"', "User-Agent": ua}
    default = default_identity()
    assert f"Chrome/{chrome_major(default.user_agent)}." in default.user_agent
    assert default.impersonate == target_for(chrome_major(default.user_agent))
    assert "Headless" not in default.user_agent and default.client_hints["sec-ch-ua-mobile"] == "?0"


def test_backoff_grows_with_jitter_up_to_the_cap_and_stops_after_the_retries() -> None:
    policy = RetryPolicy(max_retries=4, base=0.5, cap=2.0)
    error = ServerError("down", status_code=503)
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 2.0)):
        delays = {policy.delay(attempt, error) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 1
    assert policy.delay(5, error) is None
    assert policy.delay(1, BadRequest("no")) is None
    assert policy.delay(1, StreamBroken("cut", text="x")) is None
    assert policy.delay(1, ConnectError("refused")) is not None


def test_a_server_requested_wait_wins_up_to_the_maximum() -> None:
    policy = RetryPolicy(max_wait=60)
    assert policy.delay(1, RateLimited("slow down", retry_after=3.5)) == 3.5
    assert policy.delay(1, RateLimited("slow down", headers={"retry-after-ms": "250"})) == 0.25
    assert policy.delay(1, RateLimited("slow down", headers={"x-ratelimit-reset-tokens-minute": "7"})) == 7
    assert RetryPolicy(max_wait=5).delay(1, RateLimited("slow down", retry_after=30)) == 5
    unavailable = ServerError("busy", status_code=503, headers={"retry-after": "2"})
    assert policy.delay(1, unavailable) == 2
    # a rate-limit reset header on a 503 is not a request to wait
    busy = ServerError("busy", status_code=503, headers={"x-ratelimit-reset-tokens-minute": "59"})
    assert policy.delay(1, busy) <= 0.5


def test_settings_come_from_the_environment_and_calls_override_them(monkeypatch) -> None:
    monkeypatch.setenv("HARVESTKIT_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HARVESTKIT_CA_BUNDLE", "/tmp/ca.pem")
    monkeypatch.setenv("HARVESTKIT_NO_HARVEST", "1")
    settings = Settings.from_env()
    assert (settings.proxy, settings.ca_bundle, settings.allow_harvest) == ("http://127.0.0.1:9", "/tmp/ca.pem", False)
    kwargs = {"max_retries": 5, "temperature": 0.2}
    changed = settings.with_overrides(kwargs)
    assert changed.max_retries == 5 and kwargs == {"temperature": 0.2}
    assert dataclasses.replace(changed, max_retries=2) == settings


def test_messages_accept_a_prompt_and_put_the_system_message_first() -> None:
    assert as_messages("Hi") == [{"role": "user", "content": "Hi"}]
    shaped = as_messages([{"role": "system", "content": "old"}, {"role": "user", "content": "Hi"}], system="new")
    assert shaped == [{"role": "system", "content": "new"}, {"role": "user", "content": "Hi"}]


def test_aliases_resolve_and_the_seed_attributes_are_there() -> None:
    from harvestkit.client import Cloudflare

    assert Cerebras.get_model("gpt-oss") == "gpt-oss-120b" and Cerebras.get_model(None) == Cerebras.default_model
    for provider in (Cerebras, Cloudflare):
        assert provider.working and provider.supports_stream and provider.supports_system_message
        assert provider.supports_message_history and provider.default_model in provider.models
        assert all(target in provider.models for target in provider.model_aliases.values())
    assert Cerebras.api_base.startswith("https://api.cerebras.ai") and Cerebras.login_url
    assert Cloudflare.api_endpoint.endswith("/api/inference") and Cloudflare.models_url.endswith("/api/models")


def test_importing_the_client_loads_no_browser_library() -> None:
    code = "import sys, harvestkit.client; print(sorted(m for m in sys.modules if m.split('.')[0] in ('nodriver', 'websockets') or m.startswith('harvestkit.harvester')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", ["cerebras", "Cloudflare"])
def test_providers_are_found_by_name(name: str) -> None:
    from harvestkit.client import get_provider

    assert get_provider(name).site == name.lower()
    with pytest.raises(ValueError):
        get_provider("openai")


def test_every_error_harvestkit_defines_has_the_one_root() -> None:
    import importlib
    import inspect
    from pathlib import Path

    from harvestkit.client import HarvestkitError

    internal = {"ChunkShapeError", "NotClientHello", "NotHTTP2", "BadRequest"}  # caught where they are raised
    names = []
    for package in ("cache", "cli", "client", "common", "gateway", "harvester", "sandbox"):
        root = Path(importlib.import_module(f"harvestkit.{package}").__file__).parent
        names += [".".join(("harvestkit", package, *path.relative_to(root).with_suffix("").parts))
                  for path in root.rglob("*.py") if path.stem not in ("__init__", "__main__")]  # fmt: skip
    errors = [obj for name in names for _, obj in inspect.getmembers(importlib.import_module(name), inspect.isclass)
              if issubclass(obj, Exception) and not issubclass(obj, Warning) and obj.__module__ == name]  # fmt: skip
    assert {"GatewayError", "ConfigError", "CorsConfigError", "XvfbUnavailable"} <= {e.__name__ for e in errors}
    outside = sorted(e.__qualname__ for e in errors if not issubclass(e, HarvestkitError) and e.__name__ not in internal)
    assert outside == [], outside


def test_settings_are_typed_and_a_typo_names_the_field() -> None:
    settings = Settings().replace(idle_timeout=5, max_retry_wait=300)
    assert settings.idle_timeout == 5 and settings.max_retry_wait == 300
    with pytest.raises(TypeError, match="did you mean 'max_retry_wait'"):
        Settings().replace(max_retry_wiat=300)


def test_the_built_in_model_lists_name_each_model_once() -> None:
    from harvestkit.client import Cerebras, Cloudflare

    for provider in (Cerebras, Cloudflare):
        assert len(provider.models) == len(set(provider.models)), provider.models
        assert provider.get_model(None) in provider.models
