"""Authenticated proxies: the sandbox's proxy in its authenticated mode (407 without the
credentials) carries a real Chromium harvest and the client's chats; the password is never on the
browser's command line, in output or in an error; a refused CONNECT is a proxy error naming the
proxy (without its password) and the host."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from curl_cffi import requests
from curl_cffi.requests import exceptions as curl_errors
from harvester_helpers import leftovers, need_browser
from harvestkit.cache import AuthCache
from harvestkit.client.errors import ConnectError
from harvestkit.client.curl_errors import translate
from harvestkit.harvester import SiteUnreachable, harvest
from harvestkit.sandbox import Sandbox

need_browser()
HARVESTKIT = [sys.executable, "-m", "harvestkit.cli"]
USER, PASSWORD = "alice", "pw-Zq8vX3kLm9"


@pytest.fixture(scope="module")
def auth_sandbox() -> Iterator[Sandbox]:
    logging.getLogger("harvestkit.sandbox").setLevel(logging.ERROR)
    with Sandbox(proxy_auth=(USER, PASSWORD)) as running:
        yield running


@pytest.fixture
def env(auth_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    auth_sandbox.state.reset()
    monkeypatch.setenv("HARVESTKIT_HOME", str(tmp_path / "home"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    for name, value in auth_sandbox.env.items():
        monkeypatch.setenv(name, value)
    return {**os.environ}


def _bare(sandbox: Sandbox, password: str | None = None) -> str:
    if password is None:
        return f"http://127.0.0.1:{sandbox.port}"
    return f"http://{USER}:{password}@127.0.0.1:{sandbox.port}"


def test_the_sandbox_proxy_wants_credentials(auth_sandbox: Sandbox) -> None:
    url = "https://inference.cerebras.ai/api/auth/session"
    assert requests.get(url, proxy=auth_sandbox.proxy_url, verify=auth_sandbox.ca_bundle).status_code == 200
    for proxy in (_bare(auth_sandbox), _bare(auth_sandbox, "wrong")):
        with pytest.raises(curl_errors.RequestException, match="407"):
            requests.get(url, proxy=proxy, verify=auth_sandbox.ca_bundle)


@pytest.mark.timeout(90)
async def test_a_harvest_through_an_authenticated_proxy(auth_sandbox: Sandbox, env: dict[str, str], tmp_path: Path) -> None:
    command_lines: list[bytes] = []

    def progress(event) -> None:
        if event.step == "browser-started":
            pid = int(event.detail.rsplit(" ", 1)[1])
            command_lines.append(Path(f"/proc/{pid}/cmdline").read_bytes())

    record = await harvest("cloudflare", timeout=40, progress=progress)
    assert record.cookies and record.proxy == auth_sandbox.proxy_url  # the client reuses it
    assert command_lines and all(PASSWORD.encode() not in line for line in command_lines)
    assert b"--proxy-server=http://127.0.0.1:" in command_lines[0]
    assert leftovers(tmp_path) == []


@pytest.mark.timeout(90)
async def test_a_wrong_proxy_password_fails_without_showing_it(auth_sandbox: Sandbox, env: dict[str, str]) -> None:
    with pytest.raises(SiteUnreachable) as caught:
        await harvest("cloudflare", timeout=30, proxy=_bare(auth_sandbox, "wrong-pw-Ab12"))
    assert "wrong-pw-Ab12" not in str(caught.value)


@pytest.mark.timeout(120)
def test_chat_through_an_authenticated_proxy_and_a_refusal(auth_sandbox: Sandbox, env: dict[str, str]) -> None:
    done = subprocess.run([*HARVESTKIT, "harvest", "cloudflare"], env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    chat = subprocess.run([*HARVESTKIT, "-v", "chat", "-p", "cloudflare", "Hi"], env=env, capture_output=True, text=True, timeout=60)
    assert chat.returncode == 0 and "Sandbox reply to: Hi" in chat.stdout, chat.stderr
    assert PASSWORD not in chat.stdout + chat.stderr + done.stdout + done.stderr
    wrong = {**env, "HARVESTKIT_PROXY": _bare(auth_sandbox, "wrong-pw-Ab12"), "HARVESTKIT_NO_HARVEST": "1"}
    refused = subprocess.run([*HARVESTKIT, "chat", "-p", "cloudflare", "Hi"], env=wrong, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert f"proxy http://{USER}:****@127.0.0.1:{auth_sandbox.port} refused to connect" in refused.stderr
    assert "playground.ai.cloudflare.com (HTTP 407)" in refused.stderr and "wrong-pw" not in refused.stderr
    assert AuthCache().get_sync("cloudflare") is not None


async def test_a_refusal_names_the_proxy_the_request_went_through(auth_sandbox: Sandbox, env: dict[str, str]) -> None:
    """A proxy given to the client (as the gateway's --proxy does) is the one a refusal names,
    not HARVESTKIT_PROXY's, and without its password."""
    from harvestkit.client import Client

    other = f"http://mallory:wrong-pw-Cd34@127.0.0.1:{auth_sandbox.port}"
    async with Client(proxy=other, max_retries=0, allow_harvest=False) as client:
        with pytest.raises(ConnectError) as refused:
            await client.chat("Hi", "cerebras", "gpt-oss-120b", api_key="csk-proxy-test-0123456789")
    text = str(refused.value)
    assert f"proxy http://mallory:****@127.0.0.1:{auth_sandbox.port} refused to connect to api.cerebras.ai" in text
    assert "(HTTP 407)" in text and "wrong-pw" not in text and PASSWORD not in text


@pytest.mark.parametrize("status, why", [("403", "does not allow this host"), ("407", "proxy credentials")])
def test_a_refused_connect_is_a_proxy_error(status: str, why: str) -> None:
    exc = curl_errors.ConnectionError(
        f"Failed to perform, curl: (7) CONNECT tunnel failed, response {status}. See https://curl.se/ for more"
    )
    error = translate(exc, "cerebras", "https://api.cerebras.ai/v1/chat/completions?x=1", "http://bob:hunter2hunter2@10.0.0.1:3128")
    assert isinstance(error, ConnectError)
    text = str(error)
    assert "proxy http://bob:****@10.0.0.1:3128 refused to connect to api.cerebras.ai" in text
    assert why in text and "hunter2" not in text and "Log in" not in text


def test_a_request_too_large_names_the_cache() -> None:
    exc = curl_errors.RequestException("Failed to perform, curl: (100) HTTP request too large. See https://curl.se/")
    text = str(translate(exc, "cloudflare", "https://playground.ai.cloudflare.com/agents/x"))
    assert "too large to send" in text and "harvestkit cache clear cloudflare" in text and "network" not in text


@pytest.mark.timeout(60)
def test_the_sandbox_command_has_an_authenticated_mode(tmp_path: Path) -> None:
    proc = subprocess.Popen([*HARVESTKIT, "sandbox", "--proxy-auth", f"{USER}:{PASSWORD}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        exports: dict[str, str] = {}
        for line in iter(proc.stdout.readline, ""):
            if line.startswith("export "):
                name, value = line.removeprefix("export ").strip().split("=", 1)
                exports[name] = value
            if len(exports) == 2:
                break
        proxy, ca = exports["HARVESTKIT_PROXY"], exports["HARVESTKIT_CA_BUNDLE"]
        assert proxy.startswith(f"http://{USER}:")
        url = "https://inference.cerebras.ai/api/auth/session"
        assert requests.get(url, proxy=proxy, verify=ca).status_code == 200
        bare = "http://" + proxy.rpartition("@")[2]
        with pytest.raises(curl_errors.RequestException, match="407"):
            requests.get(url, proxy=bare, verify=ca)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.timeout(60)
def test_doctor_tries_a_connect_through_the_proxy(auth_sandbox: Sandbox, env: dict[str, str]) -> None:
    def doctor(proxy: str) -> str:
        done = subprocess.run([*HARVESTKIT, "doctor"], env={**env, "HARVESTKIT_PROXY": proxy},
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        line = next(line for line in done.stdout.splitlines() if " proxy " in line)
        assert PASSWORD not in done.stdout + done.stderr and "wrong-pw" not in done.stdout
        return line

    assert doctor(auth_sandbox.proxy_url).startswith("ok")
    assert "opens a tunnel" in doctor(auth_sandbox.proxy_url)
    assert doctor(_bare(auth_sandbox, "wrong-pw-Ab12")).startswith("FAIL") and "407" in doctor(_bare(auth_sandbox))
    dead = doctor(f"http://127.0.0.1:{_closed_port()}")
    assert dead.startswith("FAIL") and "cannot be reached" in dead


class Socks5:
    """A SOCKS5 proxy with user/password authentication (RFC 1928, 1929) that reaches every host
    through the sandbox's (authenticated) HTTP proxy: the client's socks5 path, end to end."""

    def __init__(self, upstream: Sandbox, user: str, password: str) -> None:
        self.upstream, self.user, self.password = upstream, user, password
        self.refused = self.tunnels = 0

    async def handle(self, reader, writer) -> None:
        import asyncio
        import base64

        try:
            _, count = await reader.readexactly(2)
            methods = await reader.readexactly(count)
            if 2 not in methods:
                writer.write(b"\x05\xff")
                return
            writer.write(b"\x05\x02")
            _, length = await reader.readexactly(2)
            user = (await reader.readexactly(length)).decode()
            (length,) = await reader.readexactly(1)
            password = (await reader.readexactly(length)).decode()
            if (user, password) != (self.user, self.password):
                self.refused += 1
                writer.write(b"\x01\x01")
                return
            writer.write(b"\x01\x00")
            _, _, _, kind = await reader.readexactly(4)
            if kind == 3:
                (length,) = await reader.readexactly(1)
                host = (await reader.readexactly(length)).decode()
            else:
                host = ".".join(str(b) for b in await reader.readexactly(4))
            port = int.from_bytes(await reader.readexactly(2), "big")
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream.port)
            pair = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            up_writer.write(f"CONNECT {host}:{port} HTTP/1.1\r\nProxy-Authorization: Basic {pair}\r\n\r\n".encode())
            await up_reader.readuntil(b"\r\n\r\n")
            writer.write(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")
            self.tunnels += 1

            async def pipe(src, dst) -> None:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                dst.close()

            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)
        except (OSError, EOFError, Exception):  # noqa: BLE001 - a test server: any failure ends the connection
            pass
        finally:
            writer.close()


@pytest.mark.timeout(60)
async def test_the_client_speaks_socks5_with_a_password(auth_sandbox: Sandbox, env: dict[str, str]) -> None:
    import asyncio

    from client_helpers import StandInHarvester
    from harvestkit.client import aclose, chat

    await StandInHarvester(auth_sandbox)("cloudflare", proxy=auth_sandbox.proxy_url, cache=AuthCache())
    socks = Socks5(auth_sandbox, "carol", "s0cks-Pw-91")
    server = await asyncio.start_server(socks.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await chat("Hi", provider="cloudflare", proxy=f"socks5h://carol:s0cks-Pw-91@127.0.0.1:{port}")
        assert "Sandbox reply to: Hi" in result.text and socks.tunnels >= 1
        with pytest.raises(ConnectError) as caught:
            await chat("Hi", provider="cloudflare", proxy=f"socks5h://carol:wrong-Pw-77@127.0.0.1:{port}")
        assert "wrong-Pw-77" not in str(caught.value) and socks.refused >= 1
    finally:
        await aclose()
        server.close()
        await server.wait_closed()
