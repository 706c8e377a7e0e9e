"""Small helpers shared by the sandbox tests."""
from __future__ import annotations

import json
import socket
from typing import Any

from curl_cffi.requests import AsyncSession
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.shortcuts import CHROME_UA, sandbox_session, solve_challenge

CEREBRAS_WEB = "https://inference.cerebras.ai"
CEREBRAS_API = "https://api.cerebras.ai"
PLAYGROUND = "https://playground.ai.cloudflare.com"


def raw_request(sandbox: Sandbox, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes to the proxy port and read until it closes."""
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=timeout) as conn:
        conn.sendall(data)
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def control(sandbox: Sandbox, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """Call the control API the way another process would."""
    payload = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(payload)}\r\n\r\n"
    answer = raw_request(sandbox, head.encode() + payload)
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1])


async def cleared_session(sandbox: Sandbox, user_agent: str = CHROME_UA) -> AsyncSession:
    """A Chrome-impersonating session that has passed the playground's challenge."""
    session = sandbox_session(sandbox.env, headers={"User-Agent": user_agent})
    assert await solve_challenge(session, user_agent)
    return session


def sse_events(body: bytes) -> list[str]:
    return [line[6:].decode() for line in body.split(b"\n") if line.startswith(b"data: ")]
