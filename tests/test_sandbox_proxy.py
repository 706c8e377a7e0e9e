"""The forward proxy: only the three hosts, real TLS with the sandbox CA, the control API."""
from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import urllib.request

import pytest
from curl_cffi.requests.exceptions import RequestException
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.shortcuts import sandbox_session
from sandbox_helpers import CEREBRAS_API, CEREBRAS_WEB, control, raw_request


async def test_session_answers_null_through_proxy_and_ca(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        response = await http.get(f"{CEREBRAS_WEB}/api/auth/session")
    assert response.status_code == 200
    assert response.text == "null"
    assert response.headers["content-type"].startswith("application/json")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_cli_with_the_exports(sandbox: Sandbox) -> None:
    ok = subprocess.run(
        ["curl", "-sS", "--proxy", sandbox.proxy_url, "--cacert", sandbox.ca_bundle,
         f"{CEREBRAS_WEB}/api/auth/session"],
        check=False, capture_output=True, text=True, timeout=30,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "null"
    refused = subprocess.run(
        ["curl", "-sS", "--proxy", sandbox.proxy_url, "https://example.com/"],
        check=False, capture_output=True, text=True, timeout=30,
    )
    assert refused.returncode != 0
    assert "403" in refused.stderr


async def test_other_hosts_are_refused_and_logged(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        with pytest.raises(RequestException):
            await http.get("https://example.com/")
    answer = raw_request(sandbox, b"CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    assert b"not served" in answer
    answer = raw_request(sandbox, b"CONNECT api.cerebras.ai:22 HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    refused = [(r["host"], r["port"]) for r in sandbox.state.refused]
    assert refused == [("example.com", 443), ("10.0.0.1", 443), ("api.cerebras.ai", 22)]


def test_plain_http_redirects_to_https_for_served_hosts_only(sandbox: Sandbox) -> None:
    answer = raw_request(sandbox, b"GET http://inference.cerebras.ai/x?y=1 HTTP/1.1\r\nHost: inference.cerebras.ai\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 301")
    assert b"Location: https://inference.cerebras.ai/x?y=1\r\n" in answer
    answer = raw_request(sandbox, b"GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")


@pytest.mark.parametrize("garbage", [b"\x16\x03\x01\x00\x05hello\r\n\r\n", b"NONSENSE\r\n\r\n", b"GET / SPDY/3\r\n\r\n"])
def test_garbage_gets_400_and_the_proxy_keeps_serving(sandbox: Sandbox, garbage: bytes) -> None:
    assert raw_request(sandbox, garbage).startswith(b"HTTP/1.1 400")
    assert control(sandbox, "GET", "/__sandbox/state")[0] == 200


def test_non_tls_bytes_in_a_tunnel_are_dropped(sandbox: Sandbox) -> None:
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as conn:
        conn.sendall(b"CONNECT api.cerebras.ai:443 HTTP/1.1\r\n\r\n")
        assert conn.recv(1024).startswith(b"HTTP/1.1 200")
        conn.sendall(b"GET / HTTP/1.1\r\n\r\n")
        try:
            assert conn.recv(1024) == b""  # closed: not TLS
        except ConnectionResetError:
            pass  # closed with our bytes unread: also a close
    assert sandbox.handshakes() == 0


async def test_tls_client_classes(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as chrome:
        await chrome.get(f"{CEREBRAS_API}/v1/tcp_warming")
    async with sandbox_session(sandbox.env, impersonate=None) as plain:
        await plain.get(f"{CEREBRAS_API}/v1/tcp_warming")

    def stdlib() -> int:
        context = ssl.create_default_context(cafile=sandbox.ca_bundle)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"https": sandbox.proxy_url}),
            urllib.request.HTTPSHandler(context=context),
        )
        with opener.open(f"{CEREBRAS_API}/v1/tcp_warming", timeout=10) as response:
            return response.status

    assert await asyncio.to_thread(stdlib) == 200
    classes = [t.client_class for t in sandbox.state.tunnels]
    assert classes == ["chrome", "other", "other"]
    assert [r.client_class for r in sandbox.requests(path="/v1/tcp_warming")] == classes
    assert all(t.sni == "api.cerebras.ai" for t in sandbox.state.tunnels)


async def test_keep_alive_reuses_one_tls_connection(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        for _ in range(5):
            assert (await http.get(f"{CEREBRAS_API}/v1/tcp_warming")).status_code == 200
    assert sandbox.handshakes("api.cerebras.ai") == 1
    assert len(sandbox.requests("api.cerebras.ai")) == 5


async def test_host_header_must_match_the_tunnel(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        response = await http.get(f"{CEREBRAS_API}/v1/tcp_warming", headers={"Host": "inference.cerebras.ai"})
    assert response.status_code == 421


def test_control_api(sandbox: Sandbox) -> None:
    status, knobs = control(sandbox, "POST", "/__sandbox/knobs", {"pace": 0.5, "generation": "sse"})
    assert status == 200 and knobs["pace"] == 0.5 and sandbox.knobs.generation == "sse"
    assert control(sandbox, "POST", "/__sandbox/knobs", {"generation": "nope"})[0] == 400
    assert control(sandbox, "POST", "/__sandbox/knobs", {"colour": "red"})[0] == 400
    status, faults = control(sandbox, "POST", "/__sandbox/fault", {"route": "cerebras.chat", "status": 429, "times": 2})
    assert status == 200 and faults["cerebras.chat"]["status"] == 429
    assert control(sandbox, "POST", "/__sandbox/fault", {"route": "nowhere", "status": 500})[0] == 400
    assert control(sandbox, "POST", "/__sandbox/expire")[0] == 200
    assert sandbox.state.expired_before > 0
    status, state = control(sandbox, "POST", "/__sandbox/reset")
    assert status == 200 and state["faults"] == {} and state["knobs"]["generation"] == "agents"
    assert control(sandbox, "GET", "/__sandbox/nothing")[0] == 404


async def test_log_records_headers_cookies_and_status(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        await http.get(f"{CEREBRAS_WEB}/api/auth/session", headers={"X-Probe": "1"}, cookies={"a": "b"})
    status, log = control(sandbox, "GET", "/__sandbox/log?host=inference.cerebras.ai&path=/api/auth")
    assert status == 200 and len(log) == 1
    entry = log[0]
    assert entry["method"] == "GET" and entry["status"] == 200 and entry["route"] == "cerebras.session"
    headers = {name.lower(): value for name, value in entry["headers"].items()}
    assert headers["x-probe"] == "1" and entry["cookies"] == {"a": "b"}
    assert entry["client_class"] == "chrome"


async def test_two_sandboxes_run_side_by_side() -> None:
    async with Sandbox() as one, Sandbox() as two:
        assert one.port != two.port and one.ca_bundle != two.ca_bundle
        async with sandbox_session(two.env) as http:
            assert (await http.get(f"{CEREBRAS_WEB}/api/auth/session")).text == "null"
        assert one.requests() == [] and len(two.requests()) == 1
