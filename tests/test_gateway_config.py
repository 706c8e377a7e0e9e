"""The config file, what overrides it, CORS preflights, and the command conventions."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from harvestkit.common.config import ConfigError, effective, load_config
from harvestkit.gateway import serve
from harvestkit.gateway.app import create_app
from harvestkit.gateway.state import GATEWAY
from harvestkit.gateway.cors import CorsConfigError, check_origins

HARVESTKIT = [sys.executable, "-m", "harvestkit"]
CONFIG = """
[gateway]
host = "127.0.0.1"
port = 0
cors_origins = ["http://127.0.0.1:5173"]
[gateway.keys]
laptop = "laptop-key-0123456789"

[models.aliases]
fast = "cerebras/gemma-4-31b"

[sessions]
proxy = "http://user:hunter2-secret@127.0.0.1:3128"
profile = "default"
[sessions.profiles]
cloudflare = "default"
"""


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARVESTKIT_GATEWAY_KEY", "HARVESTKIT_CONFIG"))}
    return {**env, **extra}


def test_the_file_is_read_and_checked(tmp_path) -> None:
    config = load_config(write(tmp_path / "c.toml", CONFIG))
    assert config.keys == {"laptop": "laptop-key-0123456789"} and config.aliases == {"fast": "cerebras/gemma-4-31b"}
    assert config.port == 0 and config.profiles == {"cloudflare": "default"}
    for text, message in [
        ("[gateway]\nprot = 8000\n", "unknown setting gateway.prot"),
        ("[gatway]\n", "unknown section [gatway]"),
        ("[gateway]\nport = '80'\n", "gateway.port must be a int"),
        ("[gateway]\ncors_origins = [1]\n", "cors_origins must be a list of strings"),
        ("[gateway\n", "is not valid TOML"),
        ("[gateway]\nstream_flush_ms = 'fast'\n", "gateway.stream_flush_ms must be a number"),
        ("[gateway]\nstream_flush_ms = true\n", "gateway.stream_flush_ms must be a number"),
        ("[gateway]\nstream_flush_ms = -1\n", "gateway.stream_flush_ms must be between 0 and 1000 ms, not -1"),
        ("[gateway]\nstream_flush_ms = 1e9\n", "gateway.stream_flush_ms must be between 0 and 1000 ms"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(write(tmp_path / "bad.toml", text))
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(write(tmp_path / "open.toml", CONFIG, 0o644))  # keys in a world-readable file
    with pytest.raises(ConfigError, match="no config file at"):
        load_config(tmp_path / "missing.toml")
    assert load_config(None).path is None or os.environ.get("HARVESTKIT_CONFIG")  # the default one is optional


def test_flags_and_environment_override_the_file(tmp_path) -> None:
    config = load_config(write(tmp_path / "c.toml", CONFIG))
    chosen = effective(config, env={})
    assert (chosen.host, chosen.port, chosen.keys, chosen.sources["keys"]) == ("127.0.0.1", 0, {"laptop": "laptop-key-0123456789"}, "config")
    env = {"HARVESTKIT_GATEWAY_KEYS": "ci:ci-key-0123456789", "HARVESTKIT_PROXY": "http://127.0.0.1:9999"}
    over = effective(config, port=8123, cors_origins=["http://localhost:3000"], profile="work", env=env)
    assert over.port == 8123 and over.sources["port"] == "flag"
    assert over.keys == {"ci": "ci-key-0123456789"} and over.sources["keys"] == "env"  # replaces the file's keys
    assert over.cors_origins == ["http://localhost:3000"] and over.profile == "work"
    assert over.proxy == "http://127.0.0.1:9999" and over.sources["proxy"] == "env HARVESTKIT_PROXY"
    assert (chosen.stream_flush_ms, chosen.sources["stream_flush_ms"]) == (1, "default")
    flushing = load_config(write(tmp_path / "f.toml", "[gateway]\nstream_flush_ms = 2.5\n"))
    assert effective(flushing, env={}).describe()["stream flush"] == "2.5 ms (config)"
    assert effective(flushing, stream_flush_ms=0, env={}).describe()["stream flush"] == "off (flag)"
    with pytest.raises(ValueError, match="stream_flush_ms must be between 0 and 1000"):
        create_app(stream_flush_ms=-1)
    assert create_app(stream_flush_ms=2.5)[GATEWAY].stream_flush == 0.0025
    shown = json.dumps(chosen.describe())
    assert "hunter2-secret" not in shown and "laptop-key" not in shown and "laptop (config)" in shown


def test_cors_origins_are_checked() -> None:
    assert check_origins(["http://localhost:3000/", "https://app.example"], False) == ["http://localhost:3000", "https://app.example"]
    with pytest.raises(CorsConfigError, match="needs a gateway key"):
        check_origins(["*"], False)
    assert check_origins(["*"], True) == ["*"]
    with pytest.raises(CorsConfigError, match="not an origin"):
        check_origins(["localhost:3000/app"], True)


async def test_preflights_allow_the_configured_origin_only(client_env) -> None:
    origin = "http://127.0.0.1:5173"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"}  # fmt: skip
    async with serve(port=0, api_key="cors-key-0123456789", cors_origins=[origin]) as url, aiohttp.ClientSession(url) as http:
        async with http.options("/v1/chat/completions", headers=preflight) as allowed:
            headers = allowed.headers
            assert allowed.status == 200
        async with http.options("/v1/responses", headers={**preflight, "Origin": "http://evil.example"}) as other:
            assert other.status == 403 and "Access-Control-Allow-Origin" not in other.headers
        async with http.get("/v1/models", headers={"Origin": origin}) as refused:  # a 401 the page can read
            assert refused.status == 401 and refused.headers["Access-Control-Allow-Origin"] == origin
            assert "x-request-id" in refused.headers["Access-Control-Expose-Headers"].lower()
    assert headers["Access-Control-Allow-Origin"] == origin and "POST" in headers["Access-Control-Allow-Methods"]
    assert {"authorization", "content-type", "x-stainless-os"} <= {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert "Access-Control-Allow-Credentials" not in headers


async def test_serve_runs_from_the_config_file(tmp_path, client_env) -> None:
    await client_env.harvester("cerebras", cache=client_env.cache)
    text = CONFIG.replace("http://user:hunter2-secret@127.0.0.1:3128", client_env.sandbox.env["HARVESTKIT_PROXY"])
    path = write(tmp_path / "c.toml", text.replace("port = 0\n", "port = 0\nstream_flush_ms = 2.5\n"))
    env = clean_env(HARVESTKIT_NO_HARVEST="1")
    process = await asyncio.create_subprocess_exec(*HARVESTKIT, "serve", "--config", str(path), env=env, stderr=subprocess.PIPE)
    try:
        line = (await process.stderr.readline()).decode()
        match = re.search(r"API at (http://127\.0\.0\.1:\d+)/v1 \(clients must send the API key\)", line)
        assert match, line
        headers = {"Authorization": "Bearer laptop-key-0123456789"}
        async with aiohttp.ClientSession(match.group(1), headers=headers) as http:
            async with http.post("/v1/chat/completions", json={"model": "fast", "messages": [{"role": "user", "content": "via alias"}]}) as chat:
                body = await chat.json()
            async with http.get("/v1/models") as models:
                ids = [m["id"] for m in (await models.json())["data"]]
            async with http.get("/") as page:
                html = await page.text()
    finally:
        process.send_signal(2)
        await asyncio.wait_for(process.wait(), 20)
    assert body["model"] == "cerebras/gemma-4-31b" and body["choices"][0]["message"]["content"].startswith("Sandbox reply to: via alias.")
    assert "fast" in ids
    assert "laptop" in html and "laptop-key" not in html and str(path) in html and "2.5 ms" in html


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARVESTKIT, *args], capture_output=True, text=True, timeout=60, check=False, env=env or clean_env())


def test_bad_setups_are_one_line_usage_errors(tmp_path) -> None:
    wildcard = run("serve", "--cors-origin", "*", "--port", "0")
    assert wildcard.returncode == 2 and wildcard.stderr.count("\n") == 1 and "needs a gateway key" in wildcard.stderr
    broken = run("status", env=clean_env(HARVESTKIT_CONFIG=str(write(tmp_path / "b.toml", "[gateway]\nprot = 1\n"))))
    assert broken.returncode == 2 and "unknown setting gateway.prot" in broken.stderr and "Traceback" not in broken.stderr
    for value in ("-5", "soon"):
        flush = run("serve", "--stream-flush-ms", value, "--port", "0")
        assert flush.returncode == 2 and "--stream-flush-ms" in flush.stderr and "Traceback" not in flush.stderr
    loose = write(tmp_path / "keys", "ci ci-key-0123456789\n", 0o644)
    refused = run("serve", "--keys-file", str(loose), "--port", "0")
    assert refused.returncode == 2 and f"chmod 600 {loose}" in refused.stderr and "ci-key" not in refused.stderr


def test_doctor_shows_the_config_in_effect_masked(tmp_path) -> None:
    env = clean_env(HARVESTKIT_CONFIG=str(write(tmp_path / "c.toml", CONFIG)), HARVESTKIT_GATEWAY_KEYS="ci:ci-key-0123456789")
    env.pop("HARVESTKIT_PROXY", None)
    done = run("doctor", "--json", env=env)
    config = json.loads(done.stdout)["checks"]["config"]
    assert config["ok"] and "keys: ci (env)" in config["detail"] and "fast -> cerebras/gemma-4-31b (config)" in config["detail"]
    assert "http://user:****@127.0.0.1:3128 (config)" in config["detail"]
    assert "hunter2" not in done.stdout + done.stderr and "ci-key" not in done.stdout + done.stderr


def test_version_module_entry_and_cache_show_json() -> None:
    version = run("--version")
    assert version.returncode == 0 and re.fullmatch(r"harvestkit \d+\.\d+\.\d+\S*\n", version.stdout)
    assert subprocess.run(["harvestkit" if shutil.which("harvestkit") else str(Path(sys.executable).parent / "harvestkit"),
                           "--version"], capture_output=True, text=True, check=False).stdout == version.stdout  # fmt: skip
    shown = run("cache", "show", "cerebras", "--json")
    assert shown.returncode == 1 and "no cerebras session" in shown.stderr  # accepted, not a usage error


def test_bash_completion_completes_commands_and_choices() -> None:
    script = run("completion", "bash").stdout
    bash = shutil.which("bash")
    assert bash
    probe = f"""{script}
COMP_WORDS=(harvestkit se); COMP_CWORD=1; _shtab_harvestkit; echo "commands: ${{COMPREPLY[*]}}"
COMP_WORDS=(harvestkit completion ""); COMP_CWORD=2; _shtab_harvestkit; echo "shells: ${{COMPREPLY[*]}}"
wait  # the script's process substitutions, which would outlive bash
"""
    done = subprocess.run([bash, "-c", probe], capture_output=True, text=True, timeout=30, check=False)
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert set(lines["commands"].split()) == {"serve"}
    assert set(lines["shells"].split()) == {"bash", "zsh"}


def test_zsh_completion_script() -> None:
    script = run("completion", "zsh").stdout
    assert script.startswith("#compdef harvestkit") and "serve" in script and "--cors-origin" in script
    zsh = shutil.which("zsh")
    if zsh:  # a syntax check where zsh is installed
        done = subprocess.run([zsh, "-n"], input=script, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
