"""The sandbox in a process of its own, for benchmarks that must not share a CPU-bound event loop
(and a GIL) with the client they measure.

    with SandboxProcess() as sandbox:
        os.environ.update(sandbox.env)
        sandbox.control("POST", "/__sandbox/knobs", {"reply_tokens": 20000})
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

__all__ = ["SandboxProcess"]


class SandboxProcess:
    """``harvestkit sandbox`` in a child process, stopped and reaped on exit."""

    def __init__(self, *args: str, start_timeout: float = 30.0) -> None:
        self.args = args
        self.start_timeout = start_timeout
        self.env: dict[str, str] = {}
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> Self:
        command = [sys.executable, "-m", "harvestkit.cli", "sandbox", "--port", "0", *self.args]
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
        )
        assert self._process.stdout is not None
        while len(self.env) < 2:
            line = self._process.stdout.readline()
            if not line:
                self.stop()
                raise RuntimeError(f"the sandbox exited at start (code {self._process.returncode})")
            if line.startswith("export ") and "=" in line:
                name, _, value = line[len("export ") :].strip().partition("=")
                self.env[name] = value
        return self

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the sandbox's control API (see harvestkit.sandbox.control)."""
        proxy = urlsplit(self.env["HARVESTKIT_PROXY"])
        connection = http.client.HTTPConnection(proxy.hostname or "127.0.0.1", proxy.port, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = json.loads(response.read() or b"null")
            if response.status != 200:
                raise RuntimeError(f"sandbox control {method} {path}: HTTP {response.status} {payload}")
            return payload
        finally:
            connection.close()

    def knobs(self, **changes: Any) -> None:
        self.control("POST", "/__sandbox/knobs", changes)

    def handshakes(self, host: str) -> int:
        """TLS connections the sandbox accepted for ``host``."""
        return sum(1 for tunnel in self.control("GET", "/__sandbox/tunnels") if tunnel["host"] == host)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        # the child removes its CA directory when it stops, but not when it had to be killed
        ca_dir = os.path.dirname(self.env.get("HARVESTKIT_CA_BUNDLE", ""))
        if os.path.basename(ca_dir).startswith("harvestkit-sandbox-"):
            shutil.rmtree(ca_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
